"""Whisper's log-mel features of a long recording, computed window by window.

Why: faster-whisper's ``FeatureExtractor`` and transformers' ``WhisperFeatureExtractor``
take the STFT of a whole recording at once. Its intermediates (framed samples, the complex
spectrum, magnitudes and their copies) peak at about 3.4 GB per hour of audio (8 GB for a
140-minute recording) while the features themselves are 80 float32 per 10 ms, about
115 MB per hour (BENCHMARKS.md, "Feature extraction memory").

A frame's log-mel depends only on its own ``n_fft`` samples of the padded recording (zero
samples appended by faster-whisper, then reflect padding of ``n_fft // 2`` at the very start
and end only), so each window of frames is computed from its own slice of samples, with
the library's own operations in the library's order, into one array of mel energies. Only
Whisper's normalisation, ``(max(log_spec, log_spec.max() - 8) + 4) / 4``, needs the whole
recording: it runs once, on the whole array, as each library runs it (the log10 too, so
that it sees the same array as the library's). The output is bit for bit the library's
(tests/test_log_mel.py); peak memory is the features plus one window's work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .config import SAMPLE_RATE

if TYPE_CHECKING:
    import torch

WINDOW_FRAMES = 3000        # frames (30 s) per window at least; the last window takes the rest
LONG_AUDIO_S = 300.0        # s: shorter recordings go through the library's own extractor
#                             (its peak is then under ~0.3 GB)


def is_long(n_samples: int, sampling_rate: int = SAMPLE_RATE) -> bool:
    """Whether a recording is long enough for windowing to matter."""
    return n_samples > LONG_AUDIO_S * sampling_rate


def frame_windows(n_frames: int, window_frames: int = WINDOW_FRAMES) -> list[tuple[int, int]]:
    """``(first, stop)`` frame ranges covering ``n_frames``, each at least ``window_frames``
    long (a shorter remainder joins the last window). Never a narrow window: BLAS computes
    a product with few columns by another kernel whose float32 sums round differently
    (OpenBLAS: under 16 columns), which would change the last bit of those frames."""
    if window_frames < 1:
        raise ValueError(f"window_frames must be positive, not {window_frames}")
    if n_frames <= 0:
        return []
    starts = list(range(0, max(n_frames - window_frames, 0) + 1, window_frames)) or [0]
    return [(first, stop) for first, stop in zip(starts, starts[1:] + [n_frames])]


def _take(pieces: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
    """``np.concatenate(pieces)[start:stop]`` without concatenating the rest."""
    parts, at = [], 0
    for piece in pieces:
        lo, hi = max(start, at), min(stop, at + len(piece))
        if lo < hi:
            parts.append(piece[lo - at: hi - at])
        at += len(piece)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class PaddedAudio:
    """The samples the STFT frames: ``audio``, then ``zeros`` zero samples, reflect-padded
    by ``pad`` at both ends, as ``np.pad(..., mode="reflect")`` and ``torch.stft(center=True)``
    pad it, but without copying the audio (230 MB per hour)."""

    pieces: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, audio: np.ndarray, zeros: int, pad: int) -> "PaddedAudio":
        body = (audio, np.zeros(zeros, dtype=audio.dtype))
        total = len(audio) + zeros
        if total <= 2 * pad + 1:         # so short the reflection folds more than once: copy
            return cls((np.pad(_take(body, 0, total), pad, mode="reflect"),))
        left = np.pad(_take(body, 0, pad + 1), (pad, 0), mode="reflect")[:pad]
        right = np.pad(_take(body, total - pad - 1, total), (0, pad), mode="reflect")[-pad:]
        return cls((left,) + body + (right,))

    def frames(self, first: int, stop: int, n_fft: int, hop: int) -> np.ndarray:
        """The samples of frames ``first`` to ``stop - 1`` (frame i starts at ``i * hop``)."""
        return _take(self.pieces, first * hop, (stop - 1) * hop + n_fft)


def faster_whisper_log_mel(extractor: Any, waveform: np.ndarray, padding: int = 160,
                           window_frames: int = WINDOW_FRAMES) -> np.ndarray:
    """``faster_whisper.feature_extractor.FeatureExtractor.__call__(waveform, padding)``,
    window by window: numpy float32 throughout, faster-whisper's own ``stft``."""
    audio = np.asarray(waveform, dtype=np.float32)
    n_fft, hop = extractor.n_fft, extractor.hop_length
    padded = PaddedAudio.of(audio, padding or 0, n_fft // 2)
    n_frames = (len(audio) + (padding or 0)) // hop     # the STFT's 1 + n // hop, less the last
    window = np.hanning(n_fft + 1)[:-1].astype("float32")
    mel = np.empty((extractor.mel_filters.shape[0], n_frames), dtype=np.float32)
    for first, stop in frame_windows(n_frames, window_frames):
        stft = extractor.stft(padded.frames(first, stop, n_fft, hop), n_fft, hop, window=window,
                              center=False, return_complex=True).astype("complex64")
        mel[:, first:stop] = extractor.mel_filters @ (np.abs(stft) ** 2)
    np.clip(mel, 1e-10, None, out=mel)          # the library's steps, in place
    np.log10(mel, out=mel)
    np.maximum(mel, mel.max() - 8.0, out=mel)
    mel += 4.0
    mel /= 4.0
    return mel


def transformers_log_mel(fe: Any, audio: np.ndarray,
                         window_frames: int = WINDOW_FRAMES) -> "torch.Tensor":
    """``WhisperFeatureExtractor._torch_extract_fbank_features`` of one recording (its
    batch of one: shape 1 x n_mels x frames), window by window: torch float32 throughout.

    The windows run on one torch thread: their tensors are small (a few MB), and handing
    each of their ~8 operations to a second thread cost more than it saved, up to 8x more
    on a 2-core machine busy with other work (BENCHMARKS.md). The normalisation runs on
    the caller's threads, as the library's does: the thread count decides which elements
    torch's log10 computes in its scalar tail, so it must match for equal bits."""
    import torch

    samples = np.asarray(audio, dtype=np.float32)
    n_fft, hop = fe.n_fft, fe.hop_length
    padded = PaddedAudio.of(samples, 0, n_fft // 2)
    window = torch.hann_window(n_fft)
    filters = torch.from_numpy(fe.mel_filters).to(torch.float32)
    mel = torch.empty((1, filters.shape[1], len(samples) // hop), dtype=torch.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for first, stop in frame_windows(mel.shape[-1], window_frames):
            frames = torch.from_numpy(padded.frames(first, stop, n_fft, hop))[None]
            stft = torch.stft(frames, n_fft, hop, window=window, center=False, return_complex=True)
            mel[:, :, first:stop] = filters.T @ (stft.abs() ** 2).contiguous()
    finally:
        torch.set_num_threads(threads)
    mel.clamp_(min=1e-10).log10_()              # the library's steps, in place
    peak = mel.max(dim=2, keepdim=True)[0].max(dim=1, keepdim=True)[0]
    torch.maximum(mel, peak - 8.0, out=mel)
    return mel.add_(4.0).div_(4.0)


def transformers_windowable(fe: Any) -> bool:
    """Only the configuration whose computation :func:`transformers_log_mel` repeats:
    transformers' Whisper extractor on its torch path, without dithering (random noise)."""
    from transformers import WhisperFeatureExtractor
    from transformers.utils import is_torch_available

    return isinstance(fe, WhisperFeatureExtractor) and not fe.dither and is_torch_available()


def transformers_long_inputs(fe: Any, audio: np.ndarray, window_frames: int = WINDOW_FRAMES
                             ) -> tuple["torch.Tensor", "torch.Tensor"]:
    """``input_features`` and ``attention_mask`` of ``fe(audio, sampling_rate=16000,
    return_tensors="pt", return_attention_mask=True, truncation=False, padding="longest")``:
    one recording, unpadded, so the mask is all ones (int32, as ``fe.pad`` makes it)."""
    import torch

    features = transformers_log_mel(fe, audio, window_frames)
    return features, torch.ones((1, features.shape[-1]), dtype=torch.int32)
