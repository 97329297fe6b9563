"""lm-eval from Python: ``import pathbench`` registers the ``pathbench`` model, so
``lm_eval.simple_evaluate(model="pathbench", model_args="pretrained=DIR")`` works in a fresh
interpreter with no other call, and so does ``simple_evaluate(model=<a PathbenchLM>)``."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "lm_eval"
TASK = "pathbench_echo_headlines"

BY_NAME = """
import json, sys
import lm_eval
from lm_eval.tasks import TaskManager
import pathbench  # the documented step: importing the package registers the model
out = lm_eval.simple_evaluate(model="pathbench", model_args=f"pretrained={sys.argv[1]},nfe=2,device=cpu",
                              tasks=[sys.argv[3]], task_manager=TaskManager(include_path=sys.argv[2]), limit=3)
print(json.dumps({"n": out["n-samples"][sys.argv[3]]["effective"], "method": out["config"]["pathbench_method"],
                  "metrics": sorted(out["results"][sys.argv[3]])}))
"""


def local_task(tmp_path: Path) -> Path:
    shutil.copy(FIXTURES / "headlines.jsonl", tmp_path)
    text = (FIXTURES / "echo_headlines.yaml").read_text()
    (tmp_path / "echo_headlines.yaml").write_text(text.replace("headlines.jsonl", str(tmp_path / "headlines.jsonl")))
    return tmp_path


def test_simple_evaluate_by_name_after_importing_the_package(kl_run, tmp_path):
    task_dir = local_task(tmp_path)
    proc = subprocess.run([sys.executable, "-c", BY_NAME, str(kl_run), str(task_dir), TASK], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "HF_DATASETS_OFFLINE": "1",
                               "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["n"] == 3 and result["method"] == "kl"
    assert any(name.startswith("exact_match") for name in result["metrics"])


def test_simple_evaluate_with_a_model_object_and_lm_evals_own_backends_still_listed(kl_run, tmp_path):
    import lm_eval
    from lm_eval.api.registry import model_registry
    from lm_eval.tasks import TaskManager

    import pathbench  # noqa: F401
    from pathbench.integrations.lmeval import PathbenchLM

    # registering pathbench did not hide lm-eval's own backends (its get_model fills only an empty registry)
    assert {"pathbench", "hf", "vllm"} <= set(model_registry.keys())
    assert model_registry.get("pathbench") is PathbenchLM
    lm = PathbenchLM(pretrained=str(kl_run), nfe=2, device="cpu")
    out = lm_eval.simple_evaluate(model=lm, tasks=[TASK], task_manager=TaskManager(include_path=str(local_task(tmp_path))),
                                  limit=2)
    assert out["n-samples"][TASK]["effective"] == 2
    assert "exact_match,strip" in out["results"][TASK]
