"""Speech between cues (a cue deleted by hand): found in the audio, warned about by check,
and left out of build's chunks. Hand-made tones for the rules, the real clip for speech."""

from __future__ import annotations

import logging

import numpy as np

import prepare_data
from vocabtune.build import build_dataset
from vocabtune.config import SAMPLE_RATE, BuildConfig
from vocabtune.dataset import load_dataset_dir
from vocabtune.schema import Cue, Severity
from vocabtune.segments import pack_cues
from vocabtune.cue_audio import listen
from vocabtune.speech_gaps import gap_problem, leave_out

from test_build import project, write_vtt  # noqa: F401  (the fixture and its helper)


def pcm(seconds: float, loud: list[tuple[float, float]]) -> bytes:
    """Near-silence (a faint hiss) with a 220 Hz tone over each (start, end) span."""
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 30, int(seconds * SAMPLE_RATE))
    t = np.arange(len(samples)) / SAMPLE_RATE
    for start, end in loud:
        span = (t >= start) & (t < end)
        samples[span] += np.sin(2 * np.pi * 220 * t[span]) * 8000
    return samples.astype("<i2").tobytes()


CUES = [Cue(0.5, 4.0, "one", 3), Cue(4.5, 8.0, "two", 6), Cue(11.0, 14.0, "three", 9)]


def test_silent_gaps_and_a_short_sound_are_not_speech():
    # 4.0-4.5 and 8.0-11.0 are quiet but for a 0.6 s sound (a breath, an "um")
    audio = pcm(15, [(0.5, 4.0), (4.5, 8.0), (9.0, 9.6), (11.0, 14.0)])
    assert listen(CUES, audio).gaps == []


def test_speech_where_a_cue_was_deleted_is_found_and_warned_at_the_next_cue():
    audio = pcm(15, [(0.5, 4.0), (4.5, 8.0), (8.2, 10.8), (11.0, 14.0)])
    (gap,) = listen(CUES, audio).gaps
    assert (gap.before, gap.after) == (CUES[1], CUES[2])
    assert 2.0 <= gap.speech_s <= 2.6
    problem = gap_problem(gap, "t.vtt")
    assert (problem.severity, problem.line) == (Severity.WARNING, 9)
    assert "00:00:08.000 and 00:00:11.000 has no cue" in problem.message
    assert "check the times" in problem.hint        # a mistyped time leaves such a gap too


def test_a_gap_beside_an_empty_cue_is_in_no_chunk_and_not_reported():
    cues = [CUES[0], Cue(4.5, 8.0, "", 6), CUES[2]]
    assert listen(cues, pcm(15, [(0.5, 14.0)])).gaps == []


def test_a_gap_with_speech_ends_the_chunk():
    audio = pcm(15, [(0.5, 4.0), (4.5, 8.0), (8.2, 10.8), (11.0, 14.0)])
    chunks = pack_cues(leave_out(CUES, listen(CUES, audio).gaps), "t.wav")
    assert [(c.start, c.end) for c in chunks] == [(0.5, 8.0), (11.0, 14.0)]


def test_check_warns_of_a_deleted_cue_in_real_speech(tmp_path, data_dir, capsys):
    rec = tmp_path / "recordings"
    rec.mkdir()
    (rec / "train.mp3").write_bytes((data_dir / "audio" / "clip.mp3").read_bytes())
    # the clip says one sentence from 0.5 to 4.9 s; its middle lost its cue
    (rec / "train.vtt").write_text("WEBVTT\n\n00:00:00.495 --> 00:00:01.600\nThe PEFT documentation\n\n"
                                   "00:00:03.800 --> 00:00:04.896\ninto the base weights.\n")
    status = prepare_data.main(["check", "--recordings", str(rec), "--vocab", str(tmp_path / "none")])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[0].startswith(f"{rec / 'train.vtt'}:6: warning: ") and "has no cue" in out[0]


def test_no_gap_warning_beside_an_error(tmp_path, data_dir, capsys):
    # a cue out of order leaves a "gap" that the error explains: no second message for it
    rec = tmp_path / "recordings"
    rec.mkdir()
    (rec / "train.mp3").write_bytes((data_dir / "audio" / "clip.mp3").read_bytes())
    (rec / "train.vtt").write_text("WEBVTT\n\n00:00:00.495 --> 00:00:00.600\nThe\n\n"
                                   "00:00:03.800 --> 00:00:04.896\ninto the base weights.\n\n"
                                   "00:00:00.600 --> 00:00:03.800\nPEFT documentation explains\n")
    assert prepare_data.main(["check", "--recordings", str(rec), "--vocab", str(tmp_path / "none")]) == 1
    out = capsys.readouterr().out
    assert "out of order" in out and "has no cue" not in out


def test_build_leaves_the_speech_of_a_deleted_cue_out(project, caplog):  # noqa: F811
    from test_build import TRAIN_CUES
    # the tone runs through the whole recording; 8.5-15.5 lost its cue: speech without text
    write_vtt(project / "recordings" / "train.vtt", TRAIN_CUES[:1] + TRAIN_CUES[2:])
    config = BuildConfig(recordings=project / "recordings", vocab=project / "vocab",
                         out=project / "data" / "me")
    with caplog.at_level(logging.WARNING):
        ds = load_dataset_dir(build_dataset(config).out)
    assert "has no cue (left out of the dataset)" in caplog.text
    assert list(zip(ds["train"]["start"], ds["train"]["end"]))[:2] == [(0.5, 7.5), (16.5, 39.5)]
