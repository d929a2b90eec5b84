"""bench/make_general_speech.py: the larger forgetting test must not share a sentence with what
the model trains on (the built-in replay), and its noise must be the 1/f room noise it claims."""

from __future__ import annotations

import numpy as np

import make_general_speech as gen  # bench/ is on sys.path (tests/conftest.py)
from vocabtune.replay import BUILTIN_DIR


def test_no_sentence_of_the_test_is_in_the_replay_and_none_repeats():
    test = gen.read_sentences(gen.SENTENCES)
    replay = {s.lower() for s in gen.read_sentences(BUILTIN_DIR / "everyday.txt")}
    assert len(test) >= 200 and len(set(test)) == len(test)
    assert not [s for s in test if s.lower() in replay]


def test_pink_noise_has_unit_rms_and_falls_with_frequency():
    noise = gen.pink_noise(1 << 16, np.random.default_rng(0))
    assert abs(np.sqrt(np.mean(noise ** 2)) - 1) < 1e-6
    power = np.abs(np.fft.rfft(noise)) ** 2
    low, high = power[10:100].mean(), power[10_000:20_000].mean()
    assert low > 50 * high          # 1/f: about 200x between these bands; white noise gives 1x
