"""Speed perturbation: real ffmpeg resampling, cues re-timed and re-packed so no copy is over
30 s and no cue is split, copies in train only."""

from __future__ import annotations

import numpy as np
import pytest

from vocabtune.augment import change_speed, check_factors, retimed, speed_chunks, with_speed_copies
from vocabtune.config import MAX_CHUNK_S, SAMPLE_RATE
from vocabtune.dataset import example_audio, load_dataset_dir
from vocabtune.errors import VocabtuneError
from vocabtune.schema import Cue

from test_training import make_dataset  # noqa: E402  (tests/ is on sys.path)


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def pcm(samples: np.ndarray) -> bytes:
    return (samples * 32767).astype(np.int16).tobytes()


def peak_hz(data: bytes) -> float:
    x = np.frombuffer(data, np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[spectrum.argmax()])


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_duration_and_pitch_together(factor):
    out = change_speed(pcm(tone(2.0, 440.0)), factor)
    assert len(out) // 2 == pytest.approx(2.0 / factor * SAMPLE_RATE, abs=40)
    assert peak_hz(out) == pytest.approx(440.0 * factor, abs=2.0)


def test_factors_near_one_are_kept_once_and_far_ones_refused():
    assert check_factors([0.9, 1.0, 1.1, 0.9]) == (0.9, 1.1)
    assert check_factors([]) == ()
    with pytest.raises(VocabtuneError, match="outside"):
        check_factors([3.0])


def test_cues_are_retimed_by_the_factor():
    cues = retimed([Cue(0.0, 2.0, "a"), Cue(2.5, 5.0, "b")], 0.8)
    assert [(c.start, c.end, c.text) for c in cues] == [(0.0, 2.5, "a"), (3.125, 6.25, "b")]


def test_a_slowed_full_chunk_is_packed_again_without_splitting_a_cue():
    """28 s of four 7 s cues lasts 31.1 s at 0.9x: two chunks, each within Whisper's window."""
    row = {"source": "talk.mp3", "start": 10.0, "end": 38.0, "text": "one two three four",
           "cues": [{"start": 7.0 * i, "end": 7.0 * i + 7.0, "text": w}
                    for i, w in enumerate(["one", "two", "three", "four"])]}
    pieces = list(speed_chunks(row, tone(28.0, 300.0), [0.9, 1.1]))
    slow = [c for c, _ in pieces if c.source.endswith("x0.9")]
    fast = [c for c, _ in pieces if c.source.endswith("x1.1")]
    assert len(slow) == 2 and len(fast) == 1
    for chunks in (slow, fast):
        assert " ".join(c.text for c in chunks) == row["text"]
        assert all(c.end - c.start <= MAX_CHUNK_S for c in chunks)
    assert slow[0].source == "talk.mp3@10.000x0.9"
    assert fast[0].end == pytest.approx(28.0 / 1.1, abs=1e-3)


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_a_cue_ending_with_the_audio_still_fits_the_copy(factor):
    """27.053 s / 1.1 = 24.5936 s: the re-timed end rounds past the resampled audio, which a
    dataset row refuses (its slice would be padded with silence)."""
    from vocabtune.dataset import chunk_rows

    row = {"source": "talk.mp3", "start": 29.127, "end": 56.18, "text": "a b",
           "cues": [{"start": 0.0, "end": 20.0, "text": "a"}, {"start": 20.713, "end": 27.053, "text": "b"}]}
    pieces = list(speed_chunks(row, tone(27.053, 300.0), [factor]))
    rows = [r for chunk, audio in pieces for r in chunk_rows([chunk], {chunk.source: audio})]
    assert " ".join(r["text"] for r in rows) == "a b"


def test_a_row_without_cue_times_is_one_cue():
    row = {"source": "talk.mp3", "start": 0.0, "end": 5.0, "text": "all of it"}
    [(chunk, audio)] = list(speed_chunks(row, tone(5.0, 300.0), [1.1]))
    assert chunk.text == "all of it" and chunk.end == pytest.approx(5.0 / 1.1, abs=1e-3)


def test_copies_go_to_train_with_audio_matching_their_times(tmp_path):
    voice = load_dataset_dir(make_dataset(tmp_path / "voice"))
    mixed = with_speed_copies(voice, [0.9, 1.1])
    n = len(voice["train"])
    assert len(mixed["train"]) == 3 * n
    assert list(mixed["validation"]["text"]) == list(voice["validation"]["text"])
    copies = mixed["train"].select(range(n, 3 * n))
    assert list(copies["text"]) == [t for t in voice["train"]["text"] for _ in (0.9, 1.1)]
    for row, original in zip(copies, [r for r in voice["train"] for _ in (0.9, 1.1)]):
        audio = example_audio(row)
        assert len(audio) == pytest.approx((row["end"] - row["start"]) * SAMPLE_RATE, abs=2)
        ratio = (original["end"] - original["start"]) / (row["end"] - row["start"])
        assert ratio == pytest.approx(0.9, abs=0.01) or ratio == pytest.approx(1.1, abs=0.01)
    assert with_speed_copies(voice, []) is voice


def test_training_adds_the_copies_to_train_only(tmp_path, tiny_whisper):
    from vocabtune.config import TrainConfig
    from vocabtune.training import prepare

    from test_training import config

    voice = make_dataset(tmp_path / "voice")
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("GGUF\n")
    inputs = prepare(config(voice, tiny_whisper, vocab, tmp_path / "run",
                            speed_perturb=TrainConfig().speed_perturb))             # the default
    assert len(inputs.train) == 3 * 6 and len(inputs.validation) == 2
    assert "encoder_hidden" in inputs.train[17]                     # encoded once, like the rest
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("words, expected", [(["none"], ()), (["0.9", "1.1"], (0.9, 1.1)),
                                             (["1", "0.95"], (0.95,))])
def test_cli_speed_factors(words, expected):
    import finetune

    assert finetune.speed_factors(words) == expected


@pytest.mark.parametrize("words, message", [(["fast"], "takes numbers"), (["5"], "outside 0.5-2")])
def test_cli_bad_speed_is_one_line(words, message, tmp_path, capsys):
    import finetune

    code = finetune.main(["train", "--dataset", str(tmp_path), "--output-dir", str(tmp_path / "run"),
                          "--speed-perturb", *words])
    err = capsys.readouterr().err
    assert code == 1 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_float_samples_go_back_to_the_same_pcm():
    """The copies start from the row's exact 16-bit samples (decoded to float by
    example_audio), not from a rescaled version of them."""
    from vocabtune.audio import float_to_pcm16, pcm16_to_float

    pcm = np.array([-32768, -12345, -1, 0, 1, 12345, 32767], dtype=np.int16).tobytes()
    assert float_to_pcm16(pcm16_to_float(pcm)) == pcm
    assert float_to_pcm16(np.array([2.0, -2.0])) == np.array([32767, -32768], np.int16).tobytes()


def test_copies_written_to_a_folder_are_the_copies_made_in_memory(tmp_path):
    """On disk (what training uses) the copies are the same rows, memory-mapped from the
    folder instead of held in memory."""
    voice = load_dataset_dir(make_dataset(tmp_path / "voice"))
    in_memory = with_speed_copies(voice, [0.9, 1.1])["train"]
    on_disk = with_speed_copies(voice, [0.9, 1.1], folder=tmp_path / "copies")["train"]
    assert on_disk.to_list() == in_memory.to_list()
    files = [f["filename"] for f in on_disk.cache_files]
    assert any(f.startswith(str(tmp_path / "copies")) for f in files)


def test_training_keeps_the_copies_beside_the_run_and_removes_them(tmp_path, tiny_whisper):
    from transformers import TrainerCallback

    from vocabtune.augment import COPIES_PREFIX
    from vocabtune.config import TrainConfig
    from vocabtune.training import train

    from test_training import config

    seen = []

    class Look(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            seen.extend(p.name for p in (tmp_path / "runs").glob(f"{COPIES_PREFIX}*"))

    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("GGUF\n")
    (tmp_path / "runs").mkdir()
    cfg = config(make_dataset(tmp_path / "voice"), tiny_whisper, vocab, tmp_path / "runs" / "one",
                 speed_perturb=TrainConfig().speed_perturb, max_steps=1)
    train(cfg, callbacks=[Look()])
    assert seen                                     # there while training ran
    assert not list(tmp_path.rglob(f"{COPIES_PREFIX}*"))    # and gone after


def test_copies_left_by_a_killed_run_are_removed_and_a_live_runs_kept(tmp_path):
    import os

    from vocabtune.augment import COPIES_PREFIX, copies_folder

    dead = tmp_path / f"{COPIES_PREFIX}999999999-abc"       # above any Linux pid_max
    live = tmp_path / f"{COPIES_PREFIX}{os.getpid()}-abc"
    dead.mkdir()
    live.mkdir()
    with copies_folder(tmp_path / "run") as folder:
        assert folder.parent == tmp_path and folder.is_dir()
        assert not dead.exists() and live.is_dir()
    assert not folder.exists() and live.is_dir()
