"""Cues with words over no speech (Whisper's "you" over room noise): found in the audio,
warned about by check, and left out of build's chunks. Hand-made tones for the rules, the
real clip with a stretch of quiet room for the commands."""

from __future__ import annotations

import logging
import wave

import numpy as np

import prepare_data
from vocabtune.audio import decode_checked
from vocabtune.build import build_dataset
from vocabtune.config import SAMPLE_RATE, BuildConfig
from vocabtune.cue_audio import listen
from vocabtune.dataset import load_dataset_dir
from vocabtune.schema import Cue, Severity

from test_speech_gaps import pcm

CUES = [Cue(0.5, 4.0, "one", 3), Cue(5.5, 8.0, "you", 6), Cue(11.0, 14.0, "three", 9)]


def test_a_cue_over_room_noise_is_found_and_warned_at_its_line():
    heard = listen(CUES, pcm(15, [(0.5, 4.0), (11.0, 14.0)]))
    assert heard.quiet == [CUES[1]] and heard.gaps == []
    (problem,) = heard.problems("t.vtt")
    assert (problem.severity, problem.line) == (Severity.WARNING, 6)
    assert 'from 00:00:05.500 to 00:00:08.000, yet the cue says "you"' in problem.message
    assert "left out of the dataset" in problem.message and "delete the cue's text" in problem.hint


def test_a_soft_word_is_speech():
    # the middle cue's word is 14 dB below the others (a fifth of the amplitude): heard
    loud = pcm(15, [(0.5, 4.0), (11.0, 14.0)])
    soft = np.frombuffer(pcm(15, [(5.0, 5.4)]), dtype="<i2") // 5
    mixed = (np.frombuffer(loud, dtype="<i2") + soft).astype("<i2").tobytes()
    assert listen(CUES, mixed).quiet == []


def test_a_last_word_timed_into_the_pause_after_its_sentence_stays():
    # Whisper's loose timing: "files." was said before 4.0 s, its cue is in the pause
    cues = [Cue(0.5, 4.0, "without running arbitrary code, unlike pickle", 3),
            Cue(4.0, 4.9, "files.", 6), Cue(11.0, 14.0, "three", 9)]
    assert listen(cues, pcm(15, [(0.5, 4.0), (11.0, 14.0)])).quiet == []


def test_speech_within_a_second_of_a_cue_is_heard_farther_is_not():
    assert listen(CUES, pcm(15, [(0.5, 4.6), (11.0, 14.0)])).quiet == []
    assert listen(CUES, pcm(15, [(0.5, 4.4), (11.0, 14.0)])).quiet == [CUES[1]]


def test_made_up_dialogue_is_not_the_speech_level_and_has_no_gaps():
    # twenty seconds of invented cues over a quiet room outweigh the real speech: measured
    # over them, the room would count as speech, and each pause between them as a gap
    made_up = [Cue(4.0 + 2 * i, 5.5 + 2 * i, f"made up {i}", 10 + 3 * i) for i in range(10)]
    cues = [Cue(0.5, 2.0, "one", 3), *made_up, Cue(27.0, 29.0, "two", 50)]
    heard = listen(cues, pcm(30, [(0.5, 2.0), (27.0, 29.0)]))
    assert heard.quiet == made_up and heard.gaps == []


def test_a_quiet_cue_is_packed_as_an_empty_one():
    heard = listen(CUES, pcm(15, [(0.5, 4.0), (11.0, 14.0)]))
    packed = heard.cues_to_pack(CUES)
    assert [(c.start, c.end, c.text) for c in packed] == [
        (0.5, 4.0, "one"), (5.5, 8.0, ""), (11.0, 14.0, "three")]


def write_clip_then_quiet_room(path, data_dir, quiet_s: float = 5.0) -> None:
    """The real clip twice (6 s each: one sentence at 0.5-4.9 s), then ``quiet_s`` of faint
    hiss: mostly speech, as a recording is."""
    speech = np.frombuffer(decode_checked(data_dir / "audio" / "clip.mp3").data, dtype="<i2")
    hiss = np.random.default_rng(1).normal(0, 20, int(quiet_s * SAMPLE_RATE)).astype("<i2")
    speech = np.concatenate([speech, speech])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.concatenate([speech, hiss]).tobytes())


SENTENCE = "The PEFT documentation explains how to merge adapters into the base weights."
VTT = (f"WEBVTT\n\n00:00:00.495 --> 00:00:04.896\n{SENTENCE}\n\n"
       f"00:00:06.495 --> 00:00:10.896\n{SENTENCE}\n\n"
       "00:00:13.500 --> 00:00:15.500\nyou\n")


def test_check_warns_of_you_over_a_quiet_room(tmp_path, data_dir, capsys):
    rec = tmp_path / "recordings"
    rec.mkdir()
    write_clip_then_quiet_room(rec / "train.wav", data_dir)
    (rec / "train.vtt").write_text(VTT)
    status = prepare_data.main(["check", "--recordings", str(rec), "--vocab", str(tmp_path / "none")])
    out = capsys.readouterr().out.splitlines()
    assert status == 0
    assert out[0].startswith(f"{rec / 'train.vtt'}:9: warning: nothing sounds like speech")


def test_the_real_sentence_is_not_called_quiet(tmp_path, data_dir, capsys):
    rec = tmp_path / "recordings"
    rec.mkdir()
    write_clip_then_quiet_room(rec / "train.wav", data_dir)
    (rec / "train.vtt").write_text(VTT.split("\n\n00:00:13")[0] + "\n")
    assert prepare_data.main(["check", "--recordings", str(rec), "--vocab", str(tmp_path / "none")]) == 0
    assert "nothing sounds like speech" not in capsys.readouterr().out


def test_build_leaves_you_over_a_quiet_room_out(tmp_path, data_dir, caplog):
    rec = tmp_path / "recordings"
    rec.mkdir()
    write_clip_then_quiet_room(rec / "train.wav", data_dir)
    (rec / "train.vtt").write_text(VTT)
    (rec / "validation.wav").write_bytes((rec / "train.wav").read_bytes())
    (rec / "validation.vtt").write_text(VTT.split("\n\n00:00:13")[0] + "\n")
    config = BuildConfig(recordings=rec, vocab=tmp_path / "none", out=tmp_path / "data")
    with caplog.at_level(logging.WARNING):
        ds = load_dataset_dir(build_dataset(config).out)
    assert "nothing sounds like speech" in caplog.text
    assert ds["train"]["text"] == [f"{SENTENCE} {SENTENCE}"]
    assert ds["train"]["end"] == [10.896]


def test_the_split_lies_between_the_room_and_the_voice_whatever_their_shares():
    from vocabtune.quiet_cues import noise_split

    rng = np.random.default_rng(0)
    for room_share in (0.1, 0.5, 0.9):                   # mostly speech ... mostly pauses
        room = rng.normal(-55, 2, int(1000 * room_share))
        voice = rng.normal(-30, 5, int(1000 * (1 - room_share)))
        assert -50 < noise_split(np.concatenate([room, voice])) < -40
    zeros = np.full(500, -200.0)                         # digital silence is no room
    assert -50 < noise_split(np.concatenate([zeros, rng.normal(-55, 2, 300), rng.normal(-30, 5, 300)])) < -40
    assert noise_split(np.full(100, -40.0)) is None and noise_split(zeros) is None
