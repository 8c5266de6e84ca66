"""One row per loss: everything the rest of the package needs to know about an objective (SPEC §5).

    objective("softmax").loss(logits, labels)           -> (loss summed over frames, dlogits)
    objective("ctc").metric(logits_seqs, labels, blank=0) -> character error rate in %

===========  ==============================  =======================  ==================================
name         loss (one sequence)             prediction               metric (pooled over a set)
===========  ==============================  =======================  ==================================
bernoulli    Σ_t Σ_k softplus(a) − z·a       σ(aᵗ) per note           nll_per_step: nats per time step
softmax      Σ_t LSE(aᵗ) − aᵗ_{ℓᵗ}           softmax(aᵗ) per frame    frame_error: % misclassified frames
ctc          −ln p(l | x)                    best path (labels)       cer: % character error rate
next_symbol  Σ_{ℓᵗ ≠ −1} LSE(aᵗ) − aᵗ_{ℓᵗ}   softmax(aᵗ) per frame    accuracy: share of scored frames
===========  ==============================  =======================  ==================================

Every metric is lower-is-better except ``accuracy`` (JZS's next-symbol accuracy on the positions their
tasks score; frames labelled −1 are not scored): early stopping keeps the best value in the row's sense
(:meth:`Objective.improves`). The equations are in :mod:`.losses` and :mod:`.ctc`; this module only
binds them to a name. Adding a loss is one new row in ``OBJECTIVES`` (its functions live next to their
equations).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import ctc, losses


@dataclass(frozen=True)
class Objective:
    """What a loss means, from the loss of one sequence to the number a paper reports."""

    name: str                 # the network's ``loss=`` name and a split's ``loss`` field
    loss: Callable            # loss(logits (T, K), target[, blank=]) -> (loss summed over T, dlogits (T, K))
    prediction: Callable      # prediction(logits[, blank=]) -> probabilities (T, K) or a label sequence
    metric: Callable          # metric(logits_seqs, target_seqs[, blank=]) -> float, pooled over all frames
    metric_name: str          # short key in records and the task table: nll_per_step, frame_error, cer, accuracy
    label: str                # for people: "NLL per time step (nats)", ...
    lower_is_better: bool     # early stopping keeps the best value in this sense
    uses_blank: bool          # loss, prediction and metric take ``blank=`` (the CTC blank's output index)
    real_targets: bool        # targets are real arrays, cast to the run's dtype (else integer labels)
    target_problem: Callable  # target_problem(y, frames, n_out) -> what is wrong with one target, or None
    bidirectional: bool       # the direction for data of no registered task (a task's own row decides)

    def loss_of(self, logits, target, blank: int = 0) -> tuple[float, np.ndarray]:
        """``loss(logits, target)``, passing ``blank`` where the objective has one."""
        return self.loss(logits, target, blank=blank) if self.uses_blank else self.loss(logits, target)

    def predict(self, logits, blank: int = 0):
        """``prediction(logits)``, passing ``blank`` where the objective has one."""
        return self.prediction(logits, blank=blank) if self.uses_blank else self.prediction(logits)

    def score(self, logits_seqs: Sequence, target_seqs: Sequence, blank: int = 0) -> float:
        """``metric`` over a set of sequences, passing ``blank`` where the objective has one."""
        if self.uses_blank:
            return self.metric(logits_seqs, target_seqs, blank=blank)
        return self.metric(logits_seqs, target_seqs)

    def improves(self, metric: float, best: float) -> bool:
        """Whether ``metric`` is better than ``best`` in this objective's sense (strictly: a tie keeps
        the earlier epoch)."""
        return metric < best if self.lower_is_better else metric > best


def best_path_cer(logits_seqs: Sequence, label_seqs: Sequence, blank: int = 0) -> float:
    """CER in % of the best-path decodings of ``logits_seqs`` against ``label_seqs`` (:mod:`.ctc`)."""
    return ctc.character_error_rate(label_seqs, [ctc.best_path(a, blank=blank) for a in logits_seqs])


# ----------------------------------------------------------------- per-loss target checks (datacheck)
def _bernoulli_target_problem(y, frames: int, n_out: int) -> str | None:
    y = np.asarray(y)
    if y.shape != (frames, n_out) or y.dtype.kind not in "biuf":
        return (f"Bernoulli targets must be a real array of shape ({frames}, {n_out}), one row per input "
                f"frame; got shape {y.shape}, dtype {y.dtype}")
    outside = ~((y >= 0) & (y <= 1))                    # also catches NaN
    if outside.any():
        t, k = np.argwhere(outside)[0]
        return f"target {y[t, k]} at frame {t}, unit {k} is not in [0, 1]"
    return None


def _label_problem(check: Callable, what: str) -> Callable:
    """The target check of a loss on one label per frame: ``check(labels, frames, n_out)``'s message."""
    def problem(y, frames: int, n_out: int) -> str | None:
        try:
            check(np.asarray(y), frames, n_out)
        except ValueError as err:
            return f"{what} target: {err}"
        return None
    return problem


def _ctc_target_problem(y, frames: int, n_out: int) -> str | None:
    y = np.asarray(y)
    try:
        if y.ndim != 1:
            return f"a CTC target must be a 1-D label sequence; got shape {y.shape}"
        losses.check_label_values(y, n_out, "position")
    except ValueError as err:
        return f"ctc target: {err}"
    blanks = np.flatnonzero(y == 0)
    if blanks.size:
        return f"label 0 at position {blanks[0]} is the CTC blank, which a target must not contain"
    needed = ctc.min_frames(y)
    if frames < needed:
        return (f"the CTC target's {y.size} labels with {needed - y.size} adjacent repeats need at least "
                f"{needed} frames, but the input has only {frames}")
    return None


OBJECTIVES = {o.name: o for o in (
    # music: next-step prediction must not see the future, so one direction
    # the loss: bernoulli_nll's fused twin, bit for bit the same (tested), a third of its time
    Objective("bernoulli", losses.bernoulli_nll_fast, losses.sigmoid, losses.nll_per_step, "nll_per_step",
              "NLL per time step (nats)", lower_is_better=True, uses_blank=False, real_targets=True,
              target_problem=_bernoulli_target_problem, bidirectional=False),
    Objective("softmax", losses.softmax_xent, losses.softmax, losses.framewise_error, "frame_error",
              "framewise classification error %", lower_is_better=True, uses_blank=False,
              real_targets=False, target_problem=_label_problem(losses.check_class_labels, "softmax"),
              bidirectional=True),
    Objective("ctc", ctc.ctc_loss, ctc.best_path, best_path_cer, "cer",
              "character error rate %", lower_is_better=True, uses_blank=True, real_targets=False,
              target_problem=_ctc_target_problem, bidirectional=True),
    # JZS's tasks: predict the next symbol, scored where the task scores it (−1 elsewhere); one direction
    Objective("next_symbol", losses.masked_softmax_xent, losses.softmax, losses.symbol_accuracy, "accuracy",
              "next-symbol accuracy (scored positions)", lower_is_better=False, uses_blank=False,
              real_targets=False, target_problem=_label_problem(losses.check_scored_labels, "next-symbol"),
              bidirectional=False),
)}


def objective(name: str) -> Objective:
    """The row for a loss name; a ``ValueError`` listing the known names otherwise."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
