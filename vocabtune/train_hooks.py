"""What vocabtune plugs into Seq2SeqTrainer: the loss, the validation metrics, the rule that
picks the best checkpoint, and one progress line per step.

The best checkpoint is the one with the **highest validation term recall, ties broken by
lower WER, then by the earlier step**. Term recall first because spelling the person's terms
right is the point of the tool (issue 3), and because teacher-forced eval loss ranks
checkpoints poorly for it (issue 4: "best by eval loss" stopped at 61% recall). WER breaks
ties since it also catches damage to everything else; the earlier step, being closer to the
base model, forgets less. The rule is computed from the Trainer's log history, so it holds
across ``--resume``, and it tells the Trainer which checkpoint to protect from rotation.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from transformers import TrainerCallback

from .scoring import score
from .targets import IGNORE_INDEX

log = logging.getLogger(__name__)
SELECTION_RULE = ("highest validation term recall; ties broken by lower WER, then by the "
                  "earlier checkpoint")


def token_mean_loss(outputs: Mapping[str, Any], labels, num_items_in_batch=None, weights=None):
    """Cross-entropy summed over label tokens, divided by the label tokens of the whole
    optimiser step (all accumulation micro-batches, all processes). ``logits`` are
    (batch, length, vocab), or (label tokens, vocab) when projected at labels only.
    ``weights`` (batch, length), if given, scale each token's term of the sum
    (``--context-weight``, term_weights.py); the divisor stays the token count, so a lower
    weight on the words around the terms means less gradient from them, not more from the
    terms.

    Needed, not a nicety: Whisper's ``forward`` takes ``**kwargs``, so the Trainer assumes it
    already divides by ``num_items_in_batch`` and stops dividing by the accumulation steps
    (and multiplies by the process count) — but Whisper returns a plain per-batch mean. Left
    alone, gradients would be ``gradient_accumulation`` times too large.
    """
    import torch.nn.functional as F

    logits = outputs["logits"].float()
    labels = labels.to(logits.device)
    if logits.dim() == 2:       # logits at the label positions only (trainer.logits_at)
        keep = labels != IGNORE_INDEX
        targets = labels[keep]
        weights = None if weights is None else weights.to(logits.device)[keep]
    else:
        logits, targets = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
        weights = None if weights is None else weights.to(logits.device).reshape(-1)
    if weights is None:         # reduction="sum" as before: unweighted runs stay bit-identical
        total = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="sum")
    else:
        per_token = F.cross_entropy(logits, targets, ignore_index=IGNORE_INDEX, reduction="none")
        total = (per_token * weights).sum()
    count = num_items_in_batch if num_items_in_batch is not None else (labels != IGNORE_INDEX).sum()
    return total / count


class TokenLoss:
    """``token_mean_loss`` as the Trainer's ``compute_loss_func``, with the current batch's
    label weights: the Trainer hands that function only the outputs and the labels, so the
    trainer's ``compute_loss`` takes ``label_weights`` out of the batch and leaves them here."""

    def __init__(self) -> None:
        self.weights = None

    def __call__(self, outputs: Mapping[str, Any], labels, num_items_in_batch=None):
        return token_mean_loss(outputs, labels, num_items_in_batch, self.weights)


def validation_token_cap(labels) -> int:
    """``max_new_tokens`` for validating a batch: twice its longest reference, plus a little.

    Validation time is generation time, one decoder step per token. An early checkpoint
    that loops ("the the the ...") would otherwise run to Whisper's 448-token limit on
    every such chunk, several times the cost of a normal one. Cut at twice the reference
    length, a looping hypothesis still carries about as many extra words as the reference
    has, so it scores as the failure it is and the ranking of checkpoints is unchanged."""
    from .config import MAX_TARGET_TOKENS

    longest = int((labels != IGNORE_INDEX).sum(-1).max()) if labels.numel() else 0
    return max(1, min(2 * longest + 8, MAX_TARGET_TOKENS - 8))


def metrics_function(tokenizer, terms: Sequence[str], model_name: str,
                     language: str = "en") -> Callable:
    """``compute_metrics`` for predict_with_generate: WER and term recall on the decoded
    validation predictions vs the decoded (plain) labels."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def decode(ids) -> list[str]:
        ids = np.where(np.asarray(ids) == IGNORE_INDEX, pad, ids)
        return [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def compute(prediction) -> dict[str, float]:
        report = score(model_name, decode(prediction.label_ids), decode(prediction.predictions), terms,
                       language=language)
        metrics = {"wer": report.wer}
        if report.term_recall is not None:
            metrics["term_recall"] = report.term_recall
        return metrics

    return compute


def evaluations(log_history: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The validation entries (one per epoch) of a Trainer log history."""
    return [e for e in log_history if "eval_wer" in e]


def selection_key(entry: Mapping[str, Any]) -> tuple[float, float, int]:
    recall = entry.get("eval_term_recall")
    return (-1.0 if recall is None else recall, -entry["eval_wer"], -entry["step"])


def diverged(entry: Mapping[str, Any]) -> bool:
    """A validation whose loss is not a number: training blew up (a learning rate far too
    high), and the adapter's weights are NaN. Such a model writes nothing, and an empty
    transcript's WER (100%) can beat an early epoch's babble, so the rule would pick it."""
    loss = entry.get("eval_loss")
    return loss is not None and not math.isfinite(loss)


def best_evaluation(log_history: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The best validation by :data:`SELECTION_RULE` among those that did not diverge."""
    found = [e for e in evaluations(log_history) if not diverged(e)]
    return max(found, key=selection_key) if found else None


class BestCheckpoint(TrainerCallback):
    """Point the Trainer at the best step so far; its ``_save_checkpoint`` then records that
    checkpoint as ``best_model_checkpoint`` and rotation never deletes it."""

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        best = best_evaluation(state.log_history)
        if best is not None:
            state.best_global_step = best["step"]
            state.best_metric = best.get("eval_term_recall", -best["eval_wer"])


class EpochSetter(TrainerCallback):
    """Tell the train examples which epoch is starting (targets are drawn per epoch).
    ``state.epoch`` is fractional when resuming mid-epoch; its floor is the epoch number."""

    def __init__(self, examples) -> None:
        self.examples = examples

    def on_epoch_begin(self, args, state, control, **kwargs):
        self.examples.set_epoch(math.floor((state.epoch or 0.0) + 1e-6))


class StepLogger(TrainerCallback):
    """One line per optimiser step (loss, seconds, samples/s) and one per validation.
    Time spent validating and saving is left out of the step times."""

    def __init__(self, samples_per_step: int) -> None:
        self.samples_per_step = samples_per_step
        self.train_seconds = 0.0            # optimiser steps only, this session
        self.steps = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._mark(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or not state.is_world_process_zero:
            return
        if "loss" in logs:
            self._step_line(state, logs)
        elif "eval_wer" in logs:
            recall = logs.get("eval_term_recall")
            log.info("validation at epoch %.2f: WER %.1f%%, term recall %s, eval loss %.3f (%.0f s)",
                     logs.get("epoch", 0.0), 100 * logs["eval_wer"],
                     "n/a" if recall is None else f"{100 * recall:.1f}%",
                     logs.get("eval_loss", float("nan")), logs.get("eval_runtime", 0.0))

    def _step_line(self, state, logs) -> None:
        steps = max(state.global_step - self._step, 1)
        seconds = time.perf_counter() - self._time
        self.train_seconds += seconds
        self.steps += steps
        log.info("step %d/%d  epoch %.2f  loss %.4f  lr %.2e  %.2f s/step  %.2f samples/s",
                 state.global_step, state.max_steps, logs.get("epoch", 0.0), logs["loss"],
                 logs.get("learning_rate", 0.0), seconds / steps,
                 self.samples_per_step * steps / seconds if seconds > 0 else 0.0)
        self._mark(state)

    def on_evaluate(self, args, state, control, **kwargs):
        self._mark(state)

    def on_save(self, args, state, control, **kwargs):
        self._mark(state)

    def _mark(self, state) -> None:
        self._time, self._step = time.perf_counter(), state.global_step
