"""Encoder outputs computed once, for training runs whose LoRA lives in the decoder only.

With the encoder frozen and adapter-free, its output for a chunk never changes during
training, so recomputing it every step (the 30 s encoder pass is most of the cost of a
Whisper step on a CPU) is wasted work. We run it once per chunk, under ``no_grad``, and feed
the decoder the stored states: results are the same as the full forward pass, only faster.
Memory: 1500 x d_model floats per chunk (3 MB for whisper-base, 4.6 MB for small), i.e.
about 0.6 GB per hour of recordings for small, three times that with the speed copies. Past
a budget they go to an unnamed temporary file beside the run instead (``StatesOnDisk``), so
training's memory does not grow with the hours recorded.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .config import SAMPLE_RATE
from .dataset import example_audio
from .errors import VocabtuneError

log = logging.getLogger(__name__)


# Chunks per encoder call on a CPU. Measured with whisper-base on the 2-core benchmark machine
# (three runs of 12 chunks): 0.59 s per chunk in batches of 1 or 2, 0.65 in 8s, 0.71 in 12s;
# bigger batches only add cache misses there. GPUs take the caller's (larger) batch.
CPU_ENCODE_BATCH = 2


def encode_batch_size(device_type: str, batch_size: int) -> int:
    return min(batch_size, CPU_ENCODE_BATCH) if device_type == "cpu" else batch_size


def encode_split(model: Any, feature_extractor: Any, split: Any, batch_size: int = 4,
                 store: Any = None) -> Sequence[np.ndarray]:
    """Encoder last hidden states of every row of ``split`` (a datasets split), appended to
    ``store`` (a list unless given, e.g. a ``StatesOnDisk``), which is returned."""
    import torch
    from tqdm.auto import tqdm

    encoder = model.get_encoder()
    device = next(encoder.parameters()).device
    dtype = next(encoder.parameters()).dtype
    batch_size = encode_batch_size(device.type, batch_size)
    states = [] if store is None else store
    with torch.no_grad(), tqdm(total=len(split), unit="chunk", desc="encoding audio once",
                               disable=len(split) < 2) as bar:
        for start in range(0, len(split), batch_size):
            rows = [split[i] for i in range(start, min(start + batch_size, len(split)))]
            feats = feature_extractor([example_audio(r) for r in rows], sampling_rate=SAMPLE_RATE,
                                      return_tensors="pt").input_features
            out = encoder(feats.to(device=device, dtype=dtype)).last_hidden_state
            for state in out.float().cpu().numpy():
                states.append(state)
            bar.update(len(rows))
    return states


# --- where the encoder outputs live ---------------------------------------------------
#
# In memory up to a budget, else in a file. A step reads a batch's states back (3 x 4.6 MB for
# whisper-small) from the page cache: milliseconds against a step's seconds. The file is
# unnamed (unlinked as soon as it is made, where the system allows), so it is gone when
# training ends however it ends, and beside the run rather than in the temp folder, which is
# often memory itself (tmpfs).

STATES_MEMORY_SHARE = 1 / 16     # of physical RAM, at most, for encoder outputs in memory ...
STATES_MAX_BYTES = 2**30         # ... and never more than this


def states_bytes(model: Any, chunks: int) -> int:
    """Bytes the encoder outputs of ``chunks`` chunks take (float32)."""
    cfg = model.config
    return chunks * cfg.max_source_positions * cfg.d_model * 4


def memory_budget(share: float, cap: int, physical: int | None) -> float:
    """``share`` of the physical RAM, never more than ``cap`` (the cap alone if unknown)."""
    return cap if physical is None else min(share * physical, cap)


def states_fit_in_memory(needed: int, physical: int | None) -> bool:
    return needed <= memory_budget(STATES_MEMORY_SHARE, STATES_MAX_BYTES, physical)


class StatesOnDisk(Sequence[np.ndarray]):
    """Same-shaped float32 arrays appended to an unnamed temporary file in ``folder`` and
    read back one at a time; a list's interface where training uses one."""

    def __init__(self, folder: Path, shape: tuple[int, ...]) -> None:
        self.folder, self.shape = Path(folder), tuple(shape)
        self.nbytes = int(np.prod(self.shape)) * 4
        self._count = 0
        try:
            self._file = tempfile.TemporaryFile(dir=self.folder, prefix=".vocabtune-encoder-")
        except OSError as err:
            raise VocabtuneError(f"cannot keep the encoder outputs on disk here ({err.strerror})",
                                 file=self.folder, hint="train with --output-dir in a folder "
                                 "you can write to") from err

    def append(self, state: np.ndarray) -> None:
        data = np.ascontiguousarray(state, dtype=np.float32)
        if data.shape != self.shape:
            raise ValueError(f"encoder output of shape {data.shape}, expected {self.shape}")
        try:
            self._file.seek(self._count * self.nbytes)
            self._file.write(data.tobytes())
            self._file.flush()
        except OSError as err:
            raise VocabtuneError(f"could not keep the encoder outputs on disk ({err.strerror})",
                                 file=self.folder, hint="free some space there, or train with "
                                 "--output-dir on another disk") from err
        self._count += 1

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):                      # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        out = np.empty(self.shape, dtype=np.float32)
        self._file.seek((index % self._count) * self.nbytes)
        if self._file.readinto(memoryview(out).cast("B")) != self.nbytes:
            raise VocabtuneError("the encoder outputs' temporary file was cut short",
                                 file=self.folder, hint="train again")
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(self._count))

    def close(self) -> None:
        self._file.close()


def spill_folder(run_dir: Path) -> Path:
    """The run folder, or the nearest folder above it that exists (preparing a run writes
    nothing visible, and the file in it has no name)."""
    here = Path(run_dir).resolve()
    while not here.is_dir() and here != here.parent:
        here = here.parent
    return here


def encoder_is_frozen(model: Any) -> bool:
    """True when nothing in the encoder trains (LoRA on the decoder only)."""
    return not any(p.requires_grad for p in model.get_encoder().parameters())


def decoder_only_targets(model: Any, names: Sequence[str]) -> list[str]:
    """Full module names of the decoder's layers called ``names``: a plain name (``q_proj``)
    or a qualified one (``self_attn.q_proj``, ``encoder_attn.q_proj``). peft matches these
    exactly, so the encoder gets no adapter."""
    return [n for n, _ in model.named_modules()
            if ".decoder.layers." in n and any(n == w or n.endswith("." + w) for w in names)]


# --- cross-attention keys/values -------------------------------------------------------
#
# The decoder's cross-attention projects all 1500 encoder frames to keys and values in every
# layer, every step. When neither the encoder nor those two projections carry an adapter, the
# projections of a chunk never change either, so we compute them once too. Measured on
# whisper-base (batch 3, ~110 tokens): the same loss and gradients bit for bit, ~20% less
# time per step. It costs layers x 2 x 1500 x d_model floats per chunk (37 MB for base,
# 110 MB for small), so it is only done where that fits a memory budget, and only on the CPU
# (on a GPU those projections are cheap and its memory is scarcer).

CROSS_KV_MEMORY_SHARE = 0.25     # of physical RAM, at most, for cached cross-attention K/V ...
# ... and never more than this. Training's peak RSS grows by about 1.25x the cache (batches
# stack copies of it). Measured with whisper-small's shapes on llm-lingo plus replay (27
# chunks, 2.8 GiB of K/V): 7.2 GiB peak cached, 3.7 GiB computed on use, for the same wall
# time; issue 5.3 asks for whisper-small training within 6 GiB. whisper-base's 0.9 GiB for
# the same data stays cached (20% faster steps).
CROSS_KV_MAX_BYTES = int(1.5 * 2**30)


def cross_kv_bytes(model: Any, chunks: int) -> int:
    """Bytes the cached cross-attention K/V of ``chunks`` chunks take (float32)."""
    cfg = model.config
    return chunks * cfg.decoder_layers * 2 * cfg.max_source_positions * cfg.d_model * 4


def cross_kv_is_frozen(model: Any) -> bool:
    """True when no decoder cross-attention key/value projection trains (nor the encoder)."""
    if not encoder_is_frozen(model):
        return False
    return not any(p.requires_grad for n, p in model.named_parameters()
                   if ".encoder_attn.k_proj" in n or ".encoder_attn.v_proj" in n)


def should_cache_cross_kv(needed: int, device_type: str, physical: int | None) -> bool:
    """Cache when on the CPU and ``needed`` bytes fit in the memory share and the cap."""
    if device_type != "cpu" or physical is None:
        return False
    return needed <= memory_budget(CROSS_KV_MEMORY_SHARE, CROSS_KV_MAX_BYTES, physical)


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):     # not on POSIX: do not cache
        return None


def cross_kv_split(model: Any, states: Sequence[np.ndarray], batch_size: int = 4) -> list[tuple]:
    """Per chunk, one (key, value) pair per decoder layer, each (heads, frames, head_dim),
    computed exactly as WhisperAttention computes them from the encoder states."""
    import torch

    layers = model.get_decoder().layers
    out: list[tuple] = []
    with torch.no_grad():
        for start in range(0, len(states), batch_size):
            hidden = torch.from_numpy(np.stack(states[start:start + batch_size]))
            per_layer = [_project(layer.encoder_attn, hidden) for layer in layers]
            for i in range(hidden.shape[0]):
                out.append(tuple((k[i].clone(), v[i].clone()) for k, v in per_layer))
    return out


def _project(attention: Any, hidden: Any) -> tuple[Any, Any]:
    shape = (hidden.shape[0], -1, attention.num_heads, attention.head_dim)
    keys = attention.k_proj(hidden).view(shape).transpose(1, 2).contiguous()
    values = attention.v_proj(hidden).view(shape).transpose(1, 2).contiguous()
    return keys, values


def stack_cross_kv(per_example: Sequence[tuple]) -> tuple:
    """One batch's cross-attention K/V: per layer, (keys, values) stacked over the examples."""
    import torch

    layers = range(len(per_example[0]))
    return tuple((torch.stack([e[j][0] for e in per_example]), torch.stack([e[j][1] for e in per_example]))
                 for j in layers)


def cross_cache(stacked: Sequence[tuple]) -> Any:
    """A fresh EncoderDecoderCache for one forward pass or one ``generate``: cross-attention
    filled (so Whisper reuses it), self-attention empty. Fresh every time, because both
    fill the self-attention part as they go."""
    from transformers.cache_utils import DynamicCache, EncoderDecoderCache

    return EncoderDecoderCache(DynamicCache(), DynamicCache(list(stacked)))
