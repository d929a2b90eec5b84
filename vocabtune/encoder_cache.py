"""Encoder outputs computed once, for training runs whose LoRA lives in the decoder only.

With the encoder frozen and adapter-free, its output for a chunk never changes during
training, so recomputing it every step (the 30 s encoder pass is most of the cost of a
Whisper step on a CPU) is wasted work. We run it once per chunk, under ``no_grad``, and feed
the decoder the stored states: results are the same as the full forward pass, only faster.
Memory: 1500 x d_model floats per chunk (3 MB for whisper-base, 4.6 MB for small), i.e.
about 0.5 GB per hour of recordings for small.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from .config import SAMPLE_RATE
from .dataset import example_audio

log = logging.getLogger(__name__)


def encode_split(model: Any, feature_extractor: Any, split: Any, batch_size: int = 4) -> list[np.ndarray]:
    """Encoder last hidden states of every row of ``split`` (a datasets split)."""
    import torch
    from tqdm.auto import tqdm

    encoder = model.get_encoder()
    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype
    states: list[np.ndarray] = []
    with torch.no_grad(), tqdm(total=len(split), unit="chunk", desc="encoding audio once",
                               disable=len(split) < 2) as bar:
        for start in range(0, len(split), batch_size):
            rows = [split[i] for i in range(start, min(start + batch_size, len(split)))]
            feats = feature_extractor([example_audio(r) for r in rows], sampling_rate=SAMPLE_RATE,
                                      return_tensors="pt").input_features
            out = encoder(feats.to(device=device, dtype=dtype)).last_hidden_state
            states.extend(out.float().cpu().numpy())
            bar.update(len(rows))
    return states


def encoder_is_frozen(model: Any) -> bool:
    """True when nothing in the encoder trains (LoRA on the decoder only)."""
    return not any(p.requires_grad for p in model.get_encoder().parameters())


def decoder_only_targets(model: Any, names: Sequence[str]) -> list[str]:
    """Full module names of the decoder's layers called ``names``: a plain name (``q_proj``)
    or a qualified one (``self_attn.q_proj``, ``encoder_attn.q_proj``). peft matches these
    exactly, so the encoder gets no adapter."""
    return [n for n, _ in model.named_modules()
            if ".decoder.layers." in n and any(n == w or n.endswith("." + w) for w in names)]
