"""vocabtune's Seq2SeqTrainer: vocabulary logits only where there is a label, cached
cross-attention K/V in training and validation, and validation generation capped per batch.

Made by a function so that importing vocabtune does not import transformers (slow).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .targets import IGNORE_INDEX


def trainer_class():
    """Seq2SeqTrainer whose loss projects to the vocabulary only at label positions (see
    ``logits_at``), which turns a batch's cached cross-attention K/V into a fresh cache for
    every use (see ``with_cross_cache``), and whose validation generates at most twice the
    longest reference of each batch (see train_hooks.validation_token_cap)."""
    from transformers import Seq2SeqTrainer

    from .modelio import whisper_of
    from .train_hooks import TokenLoss, validation_token_cap

    class VocabtuneTrainer(Seq2SeqTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            weights = inputs.pop("label_weights", None)     # not a model input
            if isinstance(self.compute_loss_func, TokenLoss):
                self.compute_loss_func.weights = weights
            inputs = with_cross_cache(inputs)
            labels = inputs.get("labels")
            if labels is None or return_outputs:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            with logits_at(whisper_of(self.model).get_output_embeddings(), labels != IGNORE_INDEX):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None, **gen_kwargs):
            """Validation: generate (capped) and the teacher-forced loss, each with its own
            cross-attention cache when the batch brings its K/V (see encoder_cache.py)."""
            import torch

            if prediction_loss_only or not self.args.predict_with_generate or "labels" not in inputs:
                return super().prediction_step(model, with_cross_cache(inputs), prediction_loss_only,
                                               ignore_keys, **gen_kwargs)
            inputs = self._prepare_inputs(inputs)
            labels = inputs["labels"]
            audio = {k: v for k, v in with_cross_cache(inputs).items()
                     if k in ("input_features", "encoder_outputs", "past_key_values", "use_cache")}
            with torch.no_grad():
                tokens = self.model.generate(**audio, **self._capped(gen_kwargs, labels))
                with self.compute_loss_context_manager():
                    loss = self.compute_loss(model, inputs).detach()
            return loss, tokens, labels

        def _capped(self, gen_kwargs: dict, labels) -> dict:
            if not gen_kwargs and hasattr(self, "_gen_kwargs"):
                gen_kwargs = self._gen_kwargs.copy()
            gen_kwargs = {k: v for k, v in gen_kwargs.items() if v is not None}
            if "max_new_tokens" not in gen_kwargs:
                gen_kwargs.pop("max_length", None)
                gen_kwargs["max_new_tokens"] = validation_token_cap(labels)
            gen_kwargs.setdefault("suppress_tokens", without_timestamps(whisper_of(self.model)))
            return gen_kwargs

    return VocabtuneTrainer


def without_timestamps(model: Any) -> list[int]:
    """The model's suppressed tokens plus every timestamp token. Validation decodes in
    no-timestamps mode, one 30 s chunk at a time; a timestamp pair emitted anyway (a young
    adapter can) makes Whisper's generate start a second segment from that point, which
    cannot reuse a chunk's cached cross-attention (it crashed) and would re-read audio."""
    gen = model.generation_config
    first = gen.no_timestamps_token_id + 1
    return sorted(set(gen.suppress_tokens or []) | set(range(first, model.config.vocab_size)))


def with_cross_cache(inputs: dict) -> dict:
    """``inputs`` with a batch's precomputed cross-attention K/V (``cross_kv``, from the
    collator) turned into a fresh cache that Whisper reuses instead of projecting."""
    if "cross_kv" not in inputs:
        return inputs
    from .encoder_cache import cross_cache

    rest = {k: v for k, v in inputs.items() if k != "cross_kv"}
    return {**rest, "past_key_values": cross_cache(inputs["cross_kv"]), "use_cache": True}


@contextmanager
def logits_at(head: Any, positions: Any) -> Iterator[None]:
    """While inside, ``head`` (Whisper's output projection) sees only the decoder states at
    ``positions`` (a (batch, length) bool mask) and returns (n_positions, vocab) logits.

    Why: the projection to 51,865 tokens and the softmax over them are about half of a
    training step on a CPU, and a batch has many positions without a label: the prompt
    (previous text), the start tokens and the right padding (~40% of the positions on
    llm-lingo). Their logits are computed only to be ignored by the loss. The logits that
    are computed are the same, so the loss and gradients are too. Whisper's ``forward``
    has no option for this (it projects every position), hence the hook on the module;
    going through ``forward`` keeps DistributedDataParallel's gradient sync intact.
    ``token_mean_loss`` takes either shape."""
    def select(module, args):
        hidden = args[0]
        if hidden.dim() != 3 or hidden.shape[:2] != positions.shape:
            return None                     # not the labelled batch: project everything
        return (hidden[positions.to(hidden.device)], *args[1:])

    handle = head.register_forward_pre_hook(select)
    try:
        yield
    finally:
        handle.remove()
