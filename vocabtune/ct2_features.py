"""faster-whisper's feature extractor, with the log-mel of long recordings computed window
by window (:mod:`vocabtune.log_mel`).

Why: ``WhisperModel.transcribe`` calls ``self.feature_extractor(audio, chunk_length=...)``
on the whole recording, whose STFT intermediates take about 3.4 GB per hour of audio. The
model reads nothing else of the extractor but its attributes (``sampling_rate``,
``hop_length``, ``chunk_length``, ``n_samples``, ``nb_max_frames``, ``time_per_frame``),
so a subclass that keeps them and changes only how long input is computed is a drop-in
replacement, with the same output to the last bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

from . import log_mel


class WindowedFeatureExtractor(FeatureExtractor):
    """faster-whisper's extractor; recordings over ``log_mel.LONG_AUDIO_S`` are windowed."""

    window_frames = log_mel.WINDOW_FRAMES

    def __call__(self, waveform: np.ndarray, padding: int = 160,
                 chunk_length: int | None = None) -> np.ndarray:
        if not log_mel.is_long(len(waveform), self.sampling_rate):
            return super().__call__(waveform, padding, chunk_length)
        if chunk_length is not None:         # what the parent does with it
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        return log_mel.faster_whisper_log_mel(self, waveform, padding, self.window_frames)


def use_windowed_features(model: Any) -> None:
    """Give a loaded ``faster_whisper.WhisperModel`` the windowed extractor, built from the
    same settings (``feat_kwargs``, read from the model's preprocessor_config.json)."""
    model.feature_extractor = WindowedFeatureExtractor(**model.feat_kwargs)
