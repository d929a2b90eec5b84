"""vocabtune's Seq2SeqTrainer: validation generation capped per batch.

Made by a function so that importing vocabtune does not import transformers (slow).
"""

from __future__ import annotations


def trainer_class():
    """Seq2SeqTrainer whose validation generates at most twice the longest reference of each
    batch (see train_hooks.validation_token_cap)."""
    from transformers import Seq2SeqTrainer

    from .train_hooks import validation_token_cap

    class VocabtuneTrainer(Seq2SeqTrainer):
        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
            if not gen_kwargs and hasattr(self, "_gen_kwargs"):
                gen_kwargs = self._gen_kwargs.copy()
            gen_kwargs = {k: v for k, v in gen_kwargs.items() if v is not None}
            labels = inputs.get("labels")
            if self.args.predict_with_generate and labels is not None and "max_new_tokens" not in gen_kwargs:
                gen_kwargs.pop("max_length", None)
                gen_kwargs["max_new_tokens"] = validation_token_cap(labels)
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys, **gen_kwargs)

    return VocabtuneTrainer
