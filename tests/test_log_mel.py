"""Windowed log-mel (vocabtune.log_mel): bit for bit the features faster-whisper's and
transformers' extractors compute on the whole recording, on synthetic audio whose
lengths hit the edges (under one window, a hop remainder, an exact window multiple), with
silence, a very loud burst and clipping; and the transformers engine really using it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocabtune import log_mel
from vocabtune.config import SAMPLE_RATE

HOP = 160
WINDOW = 250                  # frames: small windows so short audio crosses several edges


def _audio(n: int, kind: str = "noise", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.1, n).astype(np.float32)
    if kind == "silent-stretch":
        x[n // 3: 2 * n // 3] = 0.0
    elif kind == "loud-burst":               # far out of [-1, 1]: the global clamp bites
        x[n // 2: n // 2 + n // 10 + 1] *= 3000
    elif kind == "clipped":
        x = np.clip(x * 400, -1, 1)
    elif kind == "silence":
        x[:] = 0.0
    elif kind == "float64":
        x = x.astype(np.float64)
    return x


# Lengths in samples; frames are (n + faster-whisper's 160) // 160 or n // 160 (transformers).
LENGTHS = {
    "under one window": 37 * HOP + 11,
    "exactly two windows (transformers)": 2 * WINDOW * HOP,
    "exactly two windows (faster-whisper)": 2 * WINDOW * HOP - HOP,
    "hop remainder, short last window": 3 * WINDOW * HOP + 5 * HOP + 7,
    "one sample over a window": WINDOW * HOP + 1,
}
KINDS = ("noise", "silent-stretch", "loud-burst", "clipped", "silence", "float64")


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: on a busy 2-core machine torch's thread hand-off costs 10x the work.
    The thread count changes how torch splits element-wise work, so both sides of each
    comparison run with the same one; test_the_real_window_size_... also runs two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- pure

@pytest.mark.parametrize("n", [0, 1, 2999, 3000, 5999, 6000, 6001, 9000, 123_457])
def test_windows_cover_every_frame_once_and_are_never_narrow(n):
    windows = log_mel.frame_windows(n, 3000)
    assert [f for a, b in windows for f in range(a, b)] == list(range(n))
    assert all(b - a >= min(n, 3000) for a, b in windows)


@pytest.mark.parametrize("n", [1, 5, 200, 201, 399, 400, 401, 5000])
def test_padded_audio_is_np_pad_reflect_of_audio_and_zeros(n):
    for zeros in (0, 3, 160, 1000):
        _check_padded(np.arange(1, n + 1, dtype=np.float32), zeros)


def _check_padded(x: np.ndarray, zeros: int) -> None:
    want = np.pad(np.concatenate([x, np.zeros(zeros, np.float32)]), 200, mode="reflect")
    padded = log_mel.PaddedAudio.of(x, zeros, 200)
    assert np.array_equal(log_mel._take(padded.pieces, 0, len(want)), want)
    for first in range(0, max(1, (len(want) - 400) // HOP), 7):
        stop = min(first + 5, (len(want) - 400) // HOP + 1)
        got = padded.frames(first, stop, 400, HOP)
        assert np.array_equal(got, want[first * HOP: (stop - 1) * HOP + 400])


# ---------------------------------------------------------------- faster-whisper

@pytest.fixture
def windowed_everything(monkeypatch):
    monkeypatch.setattr(log_mel, "LONG_AUDIO_S", 0.0)


CASES = [(80, length, kind) for length in LENGTHS for kind in KINDS]
CASES += [(128, "hop remainder, short last window", "silent-stretch")]   # large-v3's mels


@pytest.mark.parametrize("mels, length, kind", CASES)
def test_faster_whisper_features_are_identical(length, kind, mels, windowed_everything):
    pytest.importorskip("faster_whisper")
    from faster_whisper.feature_extractor import FeatureExtractor

    from vocabtune.ct2_features import WindowedFeatureExtractor

    x = _audio(LENGTHS[length], kind, seed=mels)
    windowed = WindowedFeatureExtractor(feature_size=mels)
    windowed.window_frames = WINDOW
    want = FeatureExtractor(feature_size=mels)(x)
    got = windowed(x)
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    assert np.array_equal(got, want)


@pytest.mark.parametrize("padding", [0, 1, 160, 16_000])
def test_faster_whisper_padding_and_chunk_length_are_honoured(padding, windowed_everything):
    pytest.importorskip("faster_whisper")
    from faster_whisper.feature_extractor import FeatureExtractor

    from vocabtune.ct2_features import WindowedFeatureExtractor

    x = _audio(3 * WINDOW * HOP + 77, "silent-stretch")
    plain, windowed = FeatureExtractor(), WindowedFeatureExtractor()
    windowed.window_frames = WINDOW
    assert np.array_equal(windowed(x, padding=padding, chunk_length=20),
                          plain(x, padding=padding, chunk_length=20))
    assert (windowed.n_samples, windowed.nb_max_frames) == (plain.n_samples, plain.nb_max_frames)


def test_short_audio_goes_through_faster_whisper_itself(monkeypatch):
    pytest.importorskip("faster_whisper")
    from vocabtune.ct2_features import WindowedFeatureExtractor

    monkeypatch.setattr(log_mel, "LONG_AUDIO_S", 5.0)
    monkeypatch.setattr(log_mel, "faster_whisper_log_mel", lambda *a, **k: pytest.fail("windowed"))
    WindowedFeatureExtractor()(_audio(5 * SAMPLE_RATE))


# ---------------------------------------------------------------- transformers

def _transformers(fe, x):
    return fe(x, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True,
              truncation=False, padding="longest")


def _assert_same(got: tuple, want) -> None:
    features, mask = got
    assert features.dtype == want.input_features.dtype and features.shape == want.input_features.shape
    assert torch.equal(features, want.input_features)
    assert mask.dtype == want.attention_mask.dtype and torch.equal(mask, want.attention_mask)


@pytest.mark.parametrize("mels, length, kind", CASES)
def test_transformers_features_and_mask_are_identical(length, kind, mels):
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor(feature_size=mels)
    x = _audio(LENGTHS[length], kind, seed=mels + 1)
    assert log_mel.transformers_windowable(fe)
    _assert_same(log_mel.transformers_long_inputs(fe, x, WINDOW), _transformers(fe, x))


@pytest.mark.parametrize("threads", [1, 2])
def test_the_real_window_size_is_identical_for_both_libraries(threads):
    """Production windows (30-60 s) over 65 s: two windows, the second with the remainder."""
    from transformers import WhisperFeatureExtractor

    torch.set_num_threads(threads)

    x = _audio(65 * SAMPLE_RATE + 123, "silent-stretch")
    fe = WhisperFeatureExtractor()
    _assert_same(log_mel.transformers_long_inputs(fe, x), _transformers(fe, x))
    assert torch.get_num_threads() == threads           # the windows' one thread is undone
    pytest.importorskip("faster_whisper")
    from faster_whisper.feature_extractor import FeatureExtractor

    plain = FeatureExtractor()
    assert np.array_equal(log_mel.faster_whisper_log_mel(plain, x), plain(x))


def test_dithering_is_left_to_transformers():
    from transformers import WhisperFeatureExtractor

    assert not log_mel.transformers_windowable(WhisperFeatureExtractor(dither=1e-4))


def test_the_transformers_engine_uses_windowed_features_on_long_audio(monkeypatch):
    """Over 30 s and over LONG_AUDIO_S (lowered here): windowed, the library's tensors."""
    from types import SimpleNamespace

    from transformers import WhisperFeatureExtractor

    from vocabtune.transcribe import _long_features

    fe = WhisperFeatureExtractor()
    loaded = SimpleNamespace(processor=SimpleNamespace(feature_extractor=fe), device="cpu",
                             dtype=torch.float32)           # all _long_features reads of a model
    calls = []
    real = log_mel.transformers_long_inputs
    monkeypatch.setattr(log_mel, "transformers_long_inputs",
                        lambda fe, audio: calls.append(len(audio)) or real(fe, audio))
    monkeypatch.setattr(log_mel, "LONG_AUDIO_S", 40.0)
    for seconds, windowed in ((20, False), (35, False), (45, True)):
        x = _audio(seconds * SAMPLE_RATE + 99, "silent-stretch")
        features, mask = _long_features(loaded, x)
        extra = {} if seconds <= 30 else {"truncation": False, "padding": "longest"}
        want = fe(x, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True, **extra)
        assert torch.equal(features, want.input_features) and torch.equal(mask, want.attention_mask)
        assert (len(x) in calls) == windowed
