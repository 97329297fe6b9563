"""Task adapters and metrics: unconditional (gen-PPL, entropy), seq2seq (BLEU/ROUGE-L/
BERTScore), code infilling (Pass@k, Compiles@k); scorers: causal LMs and the oracle HMM.

Importing this package registers each task into ``pathbench.core.registry.TASKS`` and each scorer
kind into ``SCORERS``. A task computes its metrics itself (the functions of its modules): no
metric is looked up by name. Tasks reach methods only through the registry.

It also registers the lm-evaluation-harness model ``pathbench`` (:mod:`pathbench.tasks.lmeval`) when lm-eval
is installed, so ``lm_eval.simple_evaluate(model="pathbench", ...)`` works after the import
with no other call.
"""

if __name__ != "pathbench.tasks":  # the repository's folder tasks/ on sys.path (e.g. the cwd): not a package
    raise ImportError(f"pathbench's modules moved: import pathbench.tasks, not {__name__}")

from importlib.util import find_spec

from pathbench.tasks import adapters, scorers  # noqa: F401  (registration side effects)


def _register_with_lm_eval() -> None:
    """A lazy entry in lm-eval's model registry: the adapter (torch, the run loader) is imported
    only when lm-eval asks for the model. lm-eval's own backends are registered first, as lazily:
    its ``get_model`` fills them in only while the registry is empty, which this entry ends."""
    if find_spec("lm_eval") is None:  # the [eval] extra is not installed
        return
    import lm_eval.models  # noqa: F401  (lm-eval's lazy placeholders: hf, vllm, ...)
    from lm_eval.api.registry import model_registry

    target = "pathbench.integrations.lmeval:PathbenchLM"  # the decorator there upgrades this placeholder in place
    if "pathbench" not in model_registry:
        model_registry.register("pathbench", target=target)


_register_with_lm_eval()
