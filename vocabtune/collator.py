"""Batch training examples: stack log-mel features, pad decoder inputs and labels.

Right padding is safe without a decoder attention mask: the decoder is causal, so a real
token never attends to a pad that follows it, and pad positions carry label -100 (no loss).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .targets import IGNORE_INDEX


@dataclass(frozen=True)
class WhisperCollator:
    pad_token_id: int           # Whisper pads decoder inputs with <|endoftext|>

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict:
        import numpy as np
        import torch

        if "encoder_hidden" in examples[0]:     # encoder run once (encoder_cache.py)
            from transformers.modeling_outputs import BaseModelOutput

            # a BaseModelOutput, not a tuple or tensor: both forward() and Whisper's
            # generate() (used for validation) accept it
            hidden = torch.from_numpy(np.stack([e["encoder_hidden"] for e in examples]))
            audio = {"encoder_outputs": BaseModelOutput(last_hidden_state=hidden)}
            if "cross_kv" in examples[0]:       # their cross-attention K/V too; the trainer
                from .encoder_cache import stack_cross_kv   # makes a cache of them per use

                audio["cross_kv"] = stack_cross_kv([e["cross_kv"] for e in examples])
        else:
            audio = {"input_features": torch.from_numpy(np.stack([e["input_features"] for e in examples]))}
        batch = {
            **audio,
            "decoder_input_ids": pad([e["decoder_input_ids"] for e in examples], self.pad_token_id),
            "labels": pad([e["labels"] for e in examples], IGNORE_INDEX),
        }
        if "label_weights" in examples[0]:      # --context-weight (term_weights.py)
            batch["label_weights"] = pad([e["label_weights"] for e in examples], 0.0,
                                         dtype=torch.float32)
        return batch


def pad(rows: Sequence[Sequence[float]], value: float, dtype=None):
    """A (batch, longest) tensor (long unless ``dtype``), each row right-padded with ``value``."""
    import torch

    dtype = dtype or torch.long
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), value, dtype=dtype)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=dtype)
    return out
