"""A run as a Hugging Face Hub model folder: ``pathbench export`` and :func:`load_exported`.

The folder is what ``save_pretrained`` writes (``model.safetensors`` + ``config.json``) plus the
tokenizer files at its root (``tokenizer.json`` for BPE, ``hf/`` for a Hub tokenizer, and
``pathbench_tokenizer.json``), the run's ``calibration.json`` and training ``metrics.jsonl``
when it has them, and a model card (``README.md``) holding the run's meta, generation protocol
and metrics. ``config.json`` is the run's meta.json with ``model_type: pathbench`` and the
checkpoint step added, so loading it back needs nothing else: weights are copied byte for byte
from the checkpoint, and sampling the export with a seed gives the run's ids exactly.

The folder is written in a temporary sibling and renamed into place, so a reader never sees
half an export and an existing one is replaced only with ``force``; its files are 0644.

Loading is huggingface_hub's standard route for custom PyTorch models: :class:`PathbenchModel`
is a ``PyTorchModelHubMixin``, so ``PathbenchModel.from_pretrained(folder or repo id)`` gives
the run (built-in components registered by the call itself, no other step), ``.sample(n,
seed=...)`` draws what ``pathbench sample`` draws from the run, and ``save_pretrained`` /
``push_to_hub`` write the export's files unchanged. Transformers' Auto classes cannot serve it
(``model_type: pathbench`` is no transformers architecture), so the card claims no pipeline.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData, PyTorchModelHubMixin, snapshot_download

from pathbench.core.errors import ConfigError
from pathbench.core.io import atomic_write_json
from pathbench.engine.calibration import CALIBRATION
from pathbench.engine.checkpoint import (
    EXPORT_CONFIG,
    EXPORT_FORMAT,
    EXPORT_WEIGHTS,
    is_export,
    latest_checkpoint,
    read_export,
)
from pathbench.engine.plugins import load_all
from pathbench.engine.protocol import sampling_setup
from pathbench.engine.run import LoadedRun, draw_samples, load_run

CARD_TAGS = ["pathbench", "non-autoregressive", "pytorch_model_hub_mixin", "model_hub_mixin"]


@dataclass
class Export:
    """What ``pathbench export`` wrote."""

    folder: Path
    step: int
    files: list[str]


def export_run(ckpt: Path, out: Path, *, eval_metrics: list[Path] = (), force: bool = False,
               repo_id: str | None = None) -> Export:
    """Write run ``ckpt`` (its latest checkpoint) as a Hub model folder ``out``; ``eval_metrics``
    are ``pathbench eval`` metrics.json files whose results go into the model card, whose
    snippet loads ``repo_id`` (the Hub repo it is pushed to) or else the folder ``out``."""
    out = Path(out)
    if (out.is_file() or (out.is_dir() and any(out.iterdir()))) and not force:
        raise ConfigError(f"--out {out} exists and is not empty; pass --force to replace it")
    if is_export(ckpt):
        raise ConfigError(f"--ckpt {ckpt} is already an export; copy the folder instead")
    run = load_run(ckpt)  # checks the run is whole and consistent before anything is written
    found = latest_checkpoint(ckpt)
    assert found is not None  # load_run raised otherwise
    results = [_read_eval(path) for path in eval_metrics]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        shutil.copytree(ckpt / run.meta["tokenizer"], tmp, dirs_exist_ok=True)
        shutil.copyfile(found[1] / EXPORT_WEIGHTS, tmp / EXPORT_WEIGHTS)
        for name in (CALIBRATION, "metrics.jsonl"):
            if (ckpt / name).is_file():
                shutil.copyfile(ckpt / name, tmp / name)
        meta = {**run.meta, "tokenizer": "."}
        atomic_write_json(tmp / EXPORT_CONFIG, {"model_type": "pathbench",
                                                "pathbench_export_format": EXPORT_FORMAT,
                                                "checkpoint_step": run.step, **meta})
        if results:
            atomic_write_json(tmp / "eval_results.json", results)
        model_card(meta, run.step, _training_summary(ckpt / "metrics.jsonl"), results,
                   repo_id or str(out)).save(tmp / "README.md")
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        _world_readable(tmp)
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Export(out, run.step, files)


def push_to_hub(folder: Path, repo_id: str, *, private: bool = False) -> str:
    """Upload export ``folder`` to the Hub model repo ``repo_id`` (created if missing) with
    huggingface_hub's own upload; the token is the library's (``hf auth login`` or ``HF_TOKEN``).
    Returns the commit's URL."""
    read_export(folder)
    api = HfApi()
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    return str(api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model",
                                 commit_message="pathbench export"))


def load_exported(folder: Path, device: str = "cpu", method_name: str | None = None) -> LoadedRun:
    """The run in export ``folder``: what :func:`pathbench.engine.run.load_run` gives for the run it
    came from (same method, weights, tokenizer, meta and step). ``load_run`` reads an export
    too; this one refuses anything else, and registers the built-in components itself."""
    read_export(folder)  # one clear error for a folder that is no export
    load_all()  # the paths, baselines and tasks (and entry-point plugins) a fresh interpreter lacks
    return load_run(Path(folder), device, method_name)


class PathbenchModel(torch.nn.Module, PyTorchModelHubMixin, library_name="pathbench", tags=CARD_TAGS[:2]):
    """A pathbench export loaded the Hub way: ``PathbenchModel.from_pretrained(folder or repo
    id)``; ``.run`` is the :class:`LoadedRun`, ``.backbone`` its transformer (in eval mode)."""

    def __init__(self, run: LoadedRun) -> None:
        super().__init__()
        self.run = run
        self.backbone = run.model

    def sample(self, n: int = 1, *, seed: int = 0, batch_size: int = 16, protocol: str | None = None,
               seeding: str = "batch", **sampler: Any) -> list[dict[str, Any]]:
        """``n`` unconditional samples as ``pathbench sample`` writes them (text, ids, seed, ...):
        the same ids for the same seed, batch size and sampler keys (``name``, ``nfe``, ``top_k``,
        ...; the rest from the run's generation protocol or ``protocol``)."""
        run = self.run
        device = str(next(self.backbone.parameters()).device)
        method, cfg, record = sampling_setup(run.method, run.meta, protocol, sampler)
        return draw_samples(method, self.backbone, run.tokenizer, run.meta, run.step, n, cfg, seed=seed,
                            batch_size=batch_size, device=device, protocol=record, seeding=seeding)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None,
                         map_location: str = "cpu", **unused: Any) -> "PathbenchModel":
        # the whole folder, not only the weights: the tokenizer, calibration and config come with it
        folder = Path(model_id)
        if not folder.is_dir():
            folder = Path(snapshot_download(repo_id=model_id, revision=revision, cache_dir=cache_dir,
                                            force_download=force_download, local_files_only=local_files_only,
                                            token=token))
        return cls(load_exported(folder, device=map_location))

    def _save_pretrained(self, save_directory: Path) -> None:
        # the export as it was loaded, byte for byte (the mixin then writes no config or card over it)
        shutil.copytree(self.run.folder, save_directory, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".cache", ".huggingface"))


def model_card(meta: dict, step: int, training: dict, results: list[dict], location: str) -> ModelCard:
    """The README.md: Hub metadata (library, tags), a snippet that loads ``location`` (a folder
    or Hub repo id) and samples, and the run's meta, protocol and metrics."""
    # no pipeline_tag: transformers' pipelines cannot serve this model; no license: the weights'
    # terms are the data's and the publisher's to state, not the exporter's
    data = ModelCardData(library_name="pathbench", tags=[*CARD_TAGS, meta["method"]])
    protocol = meta.get("generation_protocol") or {}
    lines = [
        f"# pathbench {meta['method']} ({meta.get('preset', '')})", "",
        f"A `{meta['method']}` model trained with pathbench to step {step}, "
        "exported by `pathbench export`. With pathbench installed (`pip install -e .` in its checkout), "
        "load it with huggingface_hub's `PyTorchModelHubMixin` (a folder path or a Hub repo id) and sample:", "",
        "```python", "from pathbench.engine.hub import PathbenchModel", "",
        f"model = PathbenchModel.from_pretrained({json.dumps(location)})",
        "for record in model.sample(4, seed=0):  # the sampler of the generation protocol below",
        '    print(record["text"])', "```", "",
        "The same seed and sampler keys give the ids `pathbench sample --ckpt FOLDER --seed 0` writes "
        "(`--batch-size 16`), for this folder and for the run it was exported from.", "",
        "## Run", "", _json_block({k: meta.get(k) for k in ("method", "method_options", "preset", "model",
                                                          "train", "plugins") if k in meta}
                                  | {"data": {k: v for k, v in meta.get("data", {}).items() if k != "cache_dir"}}),
        "## Generation protocol", "", f"`{protocol.get('name', 'none recorded')}`", "", _json_block(protocol),
        "## Training metrics", "", _table(training) if training else "No metrics.jsonl in the run.", "",
    ]
    for result in results:
        lines += [f"## Evaluation: {result['task']} ({result['source']})", "", _table(result["metrics"]), ""]
    if "environment" in meta:
        lines += ["## Environment", "", _json_block(meta["environment"])]
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines))


def _training_summary(path: Path) -> dict[str, Any]:
    """The last step's loss and the last validation loss of metrics.jsonl ({} without one)."""
    if not path.is_file():
        return {}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not records:
        return {}
    summary = {"step": records[-1]["step"], "loss": records[-1].get("loss")}
    val = [r for r in records if "val_loss" in r]
    if val:
        summary.update(val_loss=val[-1]["val_loss"], val_step=val[-1]["step"])
    return summary


def _read_eval(path: Path) -> dict[str, Any]:
    """One ``pathbench eval`` metrics.json as {source, task, metrics} (scalar metrics only)."""
    try:
        result = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ConfigError(f"--metrics {path} cannot be read as JSON: {err}") from err
    metrics = result.get("metrics") if isinstance(result, dict) else None
    if not isinstance(metrics, dict):
        raise ConfigError(f"--metrics {path} is not a pathbench eval metrics.json (no 'metrics' object)")
    scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    return {"source": str(path), "task": result.get("task", "?"), "metrics": scalars}


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` to ``out``; an old ``out`` is renamed aside first and deleted
    only once the new one is in place."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
        old.rmdir()
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def _world_readable(folder: Path) -> None:
    """0755 folders and 0644 files, whatever mkstemp/mkdtemp made (0600/0700): an export is
    meant to be shared, and ``pathbench export`` writes nothing secret."""
    for path in [folder, *folder.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def _json_block(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n```\n"


def _table(metrics: dict[str, Any]) -> str:
    rows = [f"| {k} | {f'{v:.6g}' if isinstance(v, float) else v} |" for k, v in metrics.items()]
    return "\n".join(["| metric | value |", "| --- | --- |", *rows])
