"""The integrations: a trained run used outside pathbench (docs/lm-eval-and-hub.md).

* :mod:`pathbench.integrations.lmeval`: a run as the lm-evaluation-harness model ``pathbench``.
  Importing this package (``import pathbench`` does) registers that model with lm-eval, lazily,
  when lm-eval is installed, so ``lm_eval.simple_evaluate(model="pathbench", ...)`` works with no
  other call.
* The Hugging Face Hub export (``pathbench export``, ``PathbenchModel.from_pretrained``) is
  :mod:`pathbench.engine.hub`: loading a run reads an export, so it lives in the engine.

This layer sits beside sweep, studies and report: it imports the layers below it, and nothing
below imports it.
"""

if __name__ != "pathbench.integrations":  # the repository's folder integrations/ on sys.path: not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.integrations, not {__name__}")

from importlib.util import find_spec


def _register_with_lm_eval() -> None:
    """A lazy entry in lm-eval's model registry: the adapter (torch, the run loader) is imported
    only when lm-eval asks for the model. lm-eval's own backends are registered first, as lazily:
    its ``get_model`` fills them in only while the registry is empty, which this entry ends."""
    if find_spec("lm_eval") is None:  # the [eval] extra is not installed
        return
    import lm_eval.models  # noqa: F401  (lm-eval's lazy placeholders: hf, vllm, ...)
    from lm_eval.api.registry import model_registry

    target = f"{__name__}.lmeval:PathbenchLM"  # the decorator there upgrades this placeholder in place
    if "pathbench" not in model_registry:
        model_registry.register("pathbench", target=target)


_register_with_lm_eval()
