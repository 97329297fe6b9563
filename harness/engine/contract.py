"""What the harness checks of every method's outputs, built-in or plugin, where it uses them.

A broken plugin should stop at its first bad output with one line naming the method and the
rule, not pass a mask id into samples.jsonl or a float tensor into BLEU:

* ``sample()`` returns int64 ids of shape (B, S), every one in ``[0, V)`` where V is the
  *tokenizer's* vocabulary (an absorbing/mask state or padding id is the backbone's extra
  token ``V``, never an output), and positions in ``given_mask`` keep their ``given_ids``;
* ``loss()`` returns a scalar (0-dimensional) floating tensor; a non-finite value is the
  trainer's :class:`~pathbench.engine.trainer.TrainingDiverged`, with the last checkpoint named.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pathbench.core.errors import ConfigError


class MethodContractError(ConfigError):
    """A method returned something the harness cannot use (see the module docstring)."""


def check_sample(method: str, ids: object, batch_size: int, seq_len: int, vocab_size: int,
                 given_ids: Tensor | None = None, given_mask: Tensor | None = None) -> Tensor:
    """``ids`` if it keeps the sample contract, else a :class:`MethodContractError`."""
    where = f"method '{method}': sample() returned"
    if not isinstance(ids, Tensor):
        raise MethodContractError(f"{where} a {type(ids).__name__}; it must return a torch int64 tensor (B, S)")
    if ids.dtype != torch.int64:
        raise MethodContractError(f"{where} dtype {str(ids.dtype).replace('torch.', '')}; "
                                  "it must return int64 token ids (B, S)")
    if tuple(ids.shape) != (batch_size, seq_len):
        raise MethodContractError(f"{where} shape {tuple(ids.shape)}; it must be (B, S) = ({batch_size}, {seq_len})")
    bad = (ids < 0) | (ids >= vocab_size)
    if bool(bad.any()):
        b, s = (int(v) for v in bad.nonzero()[0])
        raise MethodContractError(
            f"{where} id {int(ids[b, s])} at (row {b}, position {s}), outside the tokenizer's vocabulary "
            f"[0, {vocab_size}); a mask/absorbing id ({vocab_size} for one extra token) must be replaced "
            "by a token before sample() returns")
    if given_mask is not None and given_ids is not None:
        moved = given_mask.to(ids.device) & (ids != given_ids.to(ids.device))
        if bool(moved.any()):
            b, s = (int(v) for v in moved.nonzero()[0])
            raise MethodContractError(f"{where} id {int(ids[b, s])} at given (row {b}, position {s}); "
                                      f"given positions must keep their given id {int(given_ids[b, s])}")
    return ids


def check_loss(method: str, loss: object) -> Tensor:
    """``loss`` if it is a 0-dimensional floating tensor, else a :class:`MethodContractError`."""
    if not isinstance(loss, Tensor) or not loss.is_floating_point():
        kind = type(loss).__name__ if not isinstance(loss, Tensor) else f"a {loss.dtype} tensor"
        raise MethodContractError(f"method '{method}': loss() returned {kind}; it must return a floating "
                                  "scalar tensor (the mean over scored tokens)")
    if loss.ndim != 0:
        raise MethodContractError(f"method '{method}': loss() returned shape {tuple(loss.shape)}; it must "
                                  "return a scalar (reduce over the batch: the mean over scored tokens)")
    return loss
