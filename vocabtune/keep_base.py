"""Keep what the base model already gets right: a distillation term against forgetting.

Fine-tuning on a few minutes of one person's jargon also nudges how the decoder writes
ordinary words, and general speech gets a little worse (issue 4 measures it on Harvard
sentences). Learning without forgetting: at every label position where the *base* model
(the same network with the adapter switched off) already predicts the right token, add
KL(base || fine-tuned) over the whole vocabulary. There the adapter is asked to change
nothing — not even the runner-up tokens, which are what general speech falls back on —
while the positions the base gets wrong (mostly the vocabulary terms) are left to the
cross-entropy alone. It needs no general speech and no term list, and it costs one
forward pass without gradients per step.
"""

from __future__ import annotations

from typing import Any, Mapping

from .targets import IGNORE_INDEX


def agreeing_kl(student_logits, teacher_logits, labels, count=None):
    """Sum over positions where ``teacher_logits`` argmax equals the label of
    KL(teacher || student), divided by ``count`` (the step's label tokens, as the
    cross-entropy is) so the two terms keep their ratio across batch sizes."""
    import torch.nn.functional as F

    labels = labels.to(student_logits.device)
    keep = (labels != IGNORE_INDEX) & (teacher_logits.argmax(-1) == labels)
    if count is None:
        count = (labels != IGNORE_INDEX).sum()
    if not keep.any():
        return student_logits.sum() * 0.0          # keeps the graph (DDP wants every grad)
    teacher = F.log_softmax(teacher_logits[keep].float(), dim=-1)
    student = F.log_softmax(student_logits[keep].float(), dim=-1)
    return F.kl_div(student, teacher, log_target=True, reduction="sum") / count


def base_logits(peft_model: Any, inputs: Mapping[str, Any]):
    """The base model's logits for a training batch: the adapter switched off, no gradient.
    A batch carrying cached cross-attention K/V gets a fresh self-attention cache, so the
    student's forward pass finds its own cache untouched."""
    import torch

    kwargs = {k: v for k, v in inputs.items() if k != "labels"}
    cache = kwargs.get("past_key_values")
    if cache is not None:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        kwargs["past_key_values"] = EncoderDecoderCache(DynamicCache(), cache.cross_attention_cache)
    with torch.no_grad(), peft_model.disable_adapter():
        return peft_model(**kwargs).logits


class KeepBaseLoss:
    """``compute_loss_func`` for the Trainer: the token-mean cross-entropy plus ``weight`` x
    the agreeing KL against the base logits the trainer put in ``teacher`` for this batch
    (None in evaluation). Being the loss function, it is scaled by the Trainer exactly as
    the cross-entropy is (accumulation, several processes)."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self.teacher = None

    def __call__(self, outputs, labels, num_items_in_batch=None):
        from .train_hooks import token_mean_loss

        loss = token_mean_loss(outputs, labels, num_items_in_batch)
        if self.weight > 0 and self.teacher is not None:
            loss = loss + self.weight * agreeing_kl(outputs["logits"], self.teacher, labels,
                                                    num_items_in_batch)
        return loss


def trainer_class():
    """Seq2SeqTrainer that, while training with a KeepBaseLoss of weight > 0, first runs
    the base model on the batch, and that caps validation generation at twice the longest
    reference (see train_hooks.validation_token_cap). Made lazily: transformers is slow to
    import."""
    from transformers import Seq2SeqTrainer

    class VocabtuneTrainer(Seq2SeqTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss_fn = self.compute_loss_func
            if isinstance(loss_fn, KeepBaseLoss):
                wanted = loss_fn.weight > 0 and model.training
                loss_fn.teacher = base_logits(self.accelerator.unwrap_model(model), inputs) if wanted else None
            try:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            finally:
                if isinstance(loss_fn, KeepBaseLoss):
                    loss_fn.teacher = None

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
            from .train_hooks import validation_token_cap

            if not gen_kwargs and hasattr(self, "_gen_kwargs"):
                gen_kwargs = self._gen_kwargs.copy()
            gen_kwargs = {k: v for k, v in gen_kwargs.items() if v is not None}
            labels = inputs.get("labels")
            if self.args.predict_with_generate and labels is not None and "max_new_tokens" not in gen_kwargs:
                gen_kwargs.pop("max_length", None)
                gen_kwargs["max_new_tokens"] = validation_token_cap(labels)
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys, **gen_kwargs)

    return VocabtuneTrainer
