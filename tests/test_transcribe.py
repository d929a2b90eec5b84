"""Step 1, transcribe: Whisper segments -> valid cues (pure), and both commands for real on
a tiny random Whisper (garbage text and timestamps: the output must still be valid).

These tests run the transformers engine explicitly; the CTranslate2 engine (the default)
is tested in test_ct2_engine.py."""

from __future__ import annotations

import logging
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from vocabtune.captions import read_vtt, validate_cues
from vocabtune.config import SAMPLE_RATE
from vocabtune.cues_from_whisper import (MAX_CUE_S, Piece, cues_from_pieces, pieces_from_tokens,
                                         split_long_cue)
from vocabtune.schema import Cue, Severity

TB = 1000                      # a made-up <|0.00|> id for the pure tests


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models decode token by token; on a busy 2-core machine one thread is 10x faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Nothing here may convert into the user's ~/.cache (the default engine would)."""
    monkeypatch.setenv("VOCABTUNE_CACHE", str(tmp_path / "cache"))


def assert_valid(cues, duration):
    assert all(c.text.strip() for c in cues)
    assert all(0 <= c.start < c.end <= duration + 1e-9 for c in cues)
    assert all(c.duration <= MAX_CUE_S + 1e-9 for c in cues)
    assert all(a.end <= b.start for a, b in zip(cues, cues[1:]))
    assert all(round(c.start, 3) == c.start and round(c.end, 3) == c.end for c in cues)


def ts(seconds: float) -> int:
    return TB + round(seconds / 0.02)


def decode(ids):
    return "".join(chr(ord("a") + i % 26) for i in ids)


# ---------------------------------------------------------------- pure: tokens -> pieces

def test_pieces_split_at_every_timestamp_and_keep_window_offset():
    tokens = [ts(1.0), 0, 1, ts(2.5), 2, ts(4.0)]
    pieces = pieces_from_tokens(tokens, start=31.0, end=34.0, timestamp_begin=TB, decode=decode)
    assert pieces == [Piece(31.0, 32.5, "ab"), Piece(32.5, 34.0, "c")]


def test_missing_final_timestamp_uses_the_segment_end():
    pieces = pieces_from_tokens([0, 1, 2], start=30.0, end=60.0, timestamp_begin=TB, decode=decode)
    assert pieces == [Piece(30.0, 60.0, "abc")]


def test_timestamps_only_give_no_pieces():
    assert pieces_from_tokens([ts(0), ts(1)], 0.0, 1.0, TB, decode) == []


# ---------------------------------------------------------------- pure: pieces -> cues

def test_well_formed_segments_pass_through():
    pieces = [Piece(0.0, 2.5, " Hello there."), Piece(2.5, 5.0, " General Kenobi.")]
    assert cues_from_pieces(pieces, 6.0) == [Cue(0.0, 2.5, "Hello there."), Cue(2.5, 5.0, "General Kenobi.")]


def test_overlaps_are_cut_and_order_of_speech_kept():
    cues = cues_from_pieces([Piece(0, 4, "one"), Piece(3, 6, "two"), Piece(1, 8, "three")], 10)
    assert [c.text for c in cues] == ["one", "two", "three"]
    assert [(c.start, c.end) for c in cues] == [(0, 4), (4, 6), (6, 8)]


def test_zero_length_and_reversed_cues_give_their_text_to_a_neighbour():
    cues = cues_from_pieces([Piece(1, 1, "lead"), Piece(1, 3, "a"), Piece(3, 3, "b"),
                             Piece(5, 4, "c"), Piece(4, 6, "d")], 10)
    assert [c.text for c in cues] == ["lead a b c", "d"]
    assert_valid(cues, 10)


def test_empty_text_is_dropped():
    cues = cues_from_pieces([Piece(0, 1, "  "), Piece(1, 2, ""), Piece(2, 3, "x")], 5)
    assert cues == [Cue(2.0, 3.0, "x")]


def test_times_out_of_the_audio_are_clamped_and_text_past_the_end_is_kept():
    cues = cues_from_pieces([Piece(-3, 2, "a"), Piece(2, 9.5, "b"), Piece(12, 14, "ghost")], 8.0004)
    assert cues[0] == Cue(0.0, 2.0, "a")
    assert cues[-1] == Cue(2.0, 8.0, "b ghost")
    assert_valid(cues, 8.0004)


def test_nothing_timed_becomes_one_cue_over_the_audio():
    cues = cues_from_pieces([Piece(0, 0, "x"), Piece(0, 0, "y")], 12.0)
    assert cues == [Cue(0.0, 12.0, "x y")]
    assert cues_from_pieces([Piece(0, 0, "x")], 0.0) == []


def test_long_segment_splits_at_sentences_then_words_never_over_30s():
    text = "First one. Second sentence here! " + " ".join(["word"] * 200)
    cues = cues_from_pieces([Piece(0.0, 95.0, text)], 100.0)
    assert cues[0].text == "First one." and cues[1].text == "Second sentence here!"
    assert " ".join(c.text for c in cues) == " ".join(text.split())    # no word lost
    assert_valid(cues, 100.0)


def test_medium_segments_split_only_when_long():
    cue = Cue(0.0, 10.0, "One. Two.")
    assert split_long_cue(cue) == [cue]
    parts = split_long_cue(Cue(0.0, 20.0, "One two. Six six."))  # equal lengths
    assert [p.text for p in parts] == ["One two.", "Six six."]
    assert parts[0].end == parts[1].start == 10.0


def test_a_single_endless_word_keeps_only_30s():
    cues = cues_from_pieces([Piece(0.0, 70.0, "aaaa")], 80.0)
    assert cues == [Cue(0.0, 30.0, "aaaa")]


@pytest.mark.parametrize("seed", range(20))
def test_random_garbage_segments_always_give_valid_cues(seed):
    rng = np.random.default_rng(seed)
    duration = float(rng.uniform(0.5, 120))
    pieces = [Piece(float(rng.uniform(-10, 140)), float(rng.uniform(-10, 140)),
                    rng.choice(["", " ", "word", "A sentence. Another one!", "x " * 80]))
              for _ in range(int(rng.integers(0, 30)))]
    assert_valid(cues_from_pieces(pieces, duration), duration)


# ---------------------------------------------------------------- real tiny model

@pytest.fixture
def clip(data_dir) -> Path:
    return data_dir / "audio" / "clip.mp3"


@pytest.fixture
def recordings(tmp_path, clip) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(clip, folder / "talk.mp3")
    return folder


def _errors(path: Path, duration: float):
    cues, problems = read_vtt(path)
    problems += validate_cues(cues, str(path), duration)
    return [p for p in problems if p.severity == Severity.ERROR]


def _seconds(path: Path) -> float:
    from vocabtune.audio import decode_audio

    return len(decode_audio(path)) / SAMPLE_RATE


def _cfg(**kw):
    from vocabtune.config import TranscribeConfig

    return TranscribeConfig(device="cpu", **{"engine": "transformers", **kw})


def test_transcribe_recordings_writes_a_valid_vtt(recordings, tiny_whisper):
    from vocabtune.transcribe import transcribe_recordings

    written = transcribe_recordings(_cfg(recordings=recordings, model=str(tiny_whisper)))
    assert written == [recordings / "talk.vtt"]
    assert _errors(written[0], _seconds(recordings / "talk.mp3")) == []
    assert written[0].read_text().startswith("WEBVTT\nLanguage: en\n\n")    # what build records


def test_the_vtt_names_the_language_it_was_transcribed_in(recordings, tiny_whisper):
    from vocabtune.captions import read_language
    from vocabtune.transcribe import transcribe_recordings

    [vtt] = transcribe_recordings(_cfg(recordings=recordings, model=str(tiny_whisper),
                                       language="German", temperature_fallback=False))
    assert read_language(vtt) == "de"


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_long_recording_is_decoded_window_by_window(tmp_path, clip, tiny_whisper):
    from vocabtune.audio import decode_audio
    from vocabtune.modelio import load_whisper
    from vocabtune.transcribe import Decoding, transcribe_array, transcribe_recordings

    speech = decode_audio(clip)
    long = np.tile(speech, int(np.ceil(70 * SAMPLE_RATE / len(speech))))[: 70 * SAMPLE_RATE]

    class Bar:                                    # records what the progress bar is told
        total, n, seen = 70.0, 0.0, []

        def refresh(self):
            self.seen.append(self.n)

    loaded = load_whisper(str(tiny_whisper), device="cpu", language="en")
    bar = Bar()
    cues = transcribe_array(loaded, long, Decoding("en", fallback=False), bar)   # fast: no retries
    assert_valid(cues, 70.0)
    assert len(bar.seen) >= 3 and bar.seen[0] == 0 and bar.seen[-1] >= 30   # >= 3 windows
    folder = tmp_path / "rec"
    folder.mkdir()
    _write_wav(folder / "long.wav", long)
    [vtt] = transcribe_recordings(_cfg(recordings=folder, model=str(tiny_whisper),
                                       temperature_fallback=False))
    assert _errors(vtt, 70.0) == []


def test_never_overwrites_and_force_keeps_a_backup(recordings, tiny_whisper, caplog):
    from vocabtune.transcribe import transcribe_recordings

    mine = recordings / "talk.vtt"
    mine.write_bytes(b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nmy corrected words\n")
    before = mine.read_bytes()
    with caplog.at_level(logging.INFO, logger="vocabtune.transcribe"):
        assert transcribe_recordings(_cfg(recordings=recordings, model=str(tiny_whisper))) == []
    assert mine.read_bytes() == before
    assert "skipped talk.mp3" in caplog.text
    written = transcribe_recordings(_cfg(recordings=recordings, model=str(tiny_whisper), force=True,
                                         temperature_fallback=False))
    assert written == [mine] and mine.read_bytes() != before
    backups = list(recordings.glob("talk.*.bak.vtt"))
    assert len(backups) == 1 and backups[0].read_bytes() == before


def test_recordings_with_captions_are_skipped_in_one_line(tmp_path, clip, tiny_whisper, caplog):
    """Fifty transcribed voice memos and a new one: one line says what was skipped, not fifty."""
    from vocabtune.transcribe import transcribe_recordings

    for i in range(5):
        shutil.copy(clip, tmp_path / f"New Recording {i}.mp3")
        (tmp_path / f"New Recording {i}.vtt").write_bytes(b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nmine\n")
    with caplog.at_level(logging.INFO, logger="vocabtune.transcribe"):
        assert transcribe_recordings(_cfg(recordings=tmp_path, model=str(tiny_whisper))) == []
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert lines == ["skipped 5 recordings that have a .vtt already (New Recording 0.mp3, New Recording 1.mp3, "
                     "New Recording 2.mp3, …): your corrections stay; --force redoes them"]


def test_each_recording_s_line_says_how_far_along_the_run_is(tmp_path, clip, tiny_whisper, caplog):
    """Sixty voice memos: each line says which of how many it is."""
    from vocabtune.transcribe import transcribe_recordings

    for name in ("New Recording 1.mp3", "Memo 2026-11-03 09.41.mp3"):
        shutil.copy(clip, tmp_path / name)
    with caplog.at_level(logging.INFO, logger="vocabtune.transcribe"):
        transcribe_recordings(_cfg(recordings=tmp_path, model=str(tiny_whisper), temperature_fallback=False))
    lines = [r.getMessage() for r in caplog.records if "s of audio" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["[1/2] Memo 2026-11-03 09.41.mp3", "[2/2] New Recording 1.mp3"]


def test_a_caption_named_in_another_unicode_form_is_skipped_not_doubled(tmp_path, clip, tiny_whisper):
    from vocabtune.transcribe import transcribe_recordings

    shutil.copy(clip, tmp_path / "U\u0308ni\u0308code talk.mp3")                 # decomposed, as on macOS
    mine = tmp_path / "Ünïcode talk.vtt"
    mine.write_bytes(b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nmy corrected words\n")
    assert transcribe_recordings(_cfg(recordings=tmp_path, model=str(tiny_whisper))) == []
    assert sorted(p.name for p in tmp_path.glob("*.vtt")) == [mine.name]


def test_a_caption_with_an_upper_case_suffix_is_skipped_not_doubled(tmp_path, clip, tiny_whisper):
    from vocabtune.transcribe import transcribe_recordings

    shutil.copy(clip, tmp_path / "Talk.MP3")
    mine = tmp_path / "Talk.VTT"                          # as camera and Windows tools name it
    mine.write_bytes(b"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nmy corrected words\n")
    assert transcribe_recordings(_cfg(recordings=tmp_path, model=str(tiny_whisper))) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Talk.MP3", "Talk.VTT"]


def test_prepare_data_cli_transcribe_then_check(recordings, tiny_whisper, tmp_path, capsys):
    import prepare_data
    import torch

    torch.manual_seed(0)    # temperature fallback samples: the random model's text depends on it

    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("vLLM\nPEFT\n")
    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper), "--device", "cpu",
            "--engine", "transformers"]
    assert prepare_data.main(args) == 0
    assert f"wrote {recordings / 'talk.vtt'}" in capsys.readouterr().out
    assert prepare_data.main(["check", "--recordings", str(recordings), "--vocab", str(vocab)]) == 0
    assert prepare_data.main(args) == 0                      # second run: nothing to do
    assert "nothing to transcribe" in capsys.readouterr().out


def test_an_unreadable_recording_does_not_stop_the_others(recordings, tiny_whisper, capsys):
    import prepare_data

    (recordings / "a-broken.mp3").write_bytes(b"not audio at all")       # sorted first
    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper), "--device", "cpu",
            "--engine", "transformers"]
    assert prepare_data.main(args) == 1
    out, err = capsys.readouterr()
    assert f"wrote {recordings / 'talk.vtt'}" in out
    assert "a-broken.mp3: cannot decode audio" in err and "Traceback" not in err
    assert sorted(p.name for p in recordings.glob("*.vtt")) == ["talk.vtt"]


def test_cues_over_digital_silence_are_left_out(caplog):
    """whisper-base wrote "you" over each 30 s window of a 60 s silent lead-in."""
    from vocabtune.transcribe import without_unheard_cues

    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    audio = np.concatenate([np.zeros(4 * SAMPLE_RATE), 0.3 * np.sin(2 * np.pi * 220 * t)]).astype(np.float32)
    cues = [Cue(0.0, 2.0, "you"), Cue(1.5, 4.5, "starts in silence"), Cue(4.0, 6.0, "words")]
    with caplog.at_level(logging.INFO):
        assert without_unheard_cues(cues, audio, Path("lead-in.mp3")) == cues[1:]
    assert 'lead-in.mp3: left out 1 cue(s) with no speech under them ("you" at 0.0 s)' in caplog.text


def test_cues_over_a_quiet_room_are_left_out(caplog):
    """whisper-base wrote twenty cues of made-up dialogue over 30 s of a quiet room."""
    from vocabtune.transcribe import without_unheard_cues

    rng = np.random.default_rng(0)
    room = rng.normal(0, 0.002, 10 * SAMPLE_RATE)                  # about -54 dBFS
    t = np.arange(len(room)) / SAMPLE_RATE
    voice = 0.1 * np.sin(2 * np.pi * 220 * t) * ((t >= 6.0) & (t < 9.0))
    cues = [Cue(0.0, 2.0, "I'm going to check."), Cue(2.0, 4.5, "Thanks."), Cue(6.0, 9.0, "words")]
    with caplog.at_level(logging.INFO):
        assert without_unheard_cues(cues, (room + voice).astype(np.float32), Path("a.mp3")) == cues[2:]
    assert "a.mp3: left out 2 cue(s) with no speech under them" in caplog.text


def test_an_empty_file_is_named_as_empty(recordings, tiny_whisper, capsys):
    import prepare_data

    (recordings / "memo.m4a").write_bytes(b"")                 # an interrupted copy
    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper), "--device", "cpu",
            "--engine", "transformers"]
    assert prepare_data.main(args) == 1
    err = capsys.readouterr().err
    assert f"error: {recordings / 'memo.m4a'}: cannot decode audio (the file is empty: 0 bytes) — " in err


def test_a_silent_recording_is_named_not_transcribed(recordings, tiny_whisper, capsys):
    """A muted microphone gave "you" (whisper-base, twice in 60 s of silence), a cue that
    check passed and build trained on."""
    import prepare_data

    _write_wav(recordings / "muted.wav", np.zeros(SAMPLE_RATE * 3, dtype=np.float32))
    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper), "--device", "cpu",
            "--engine", "transformers"]
    assert prepare_data.main(args) == 1
    out, err = capsys.readouterr()
    assert f"wrote {recordings / 'talk.vtt'}" in out
    assert f"error: {recordings / 'muted.wav'}: the recording is silent" in err
    assert "microphone" in err and "Traceback" not in err
    assert sorted(p.name for p in recordings.glob("*.vtt")) == ["talk.vtt"]


def test_prompt_vocab_is_used_and_missing_vocab_is_one_clear_error(recordings, tiny_whisper, tmp_path, capsys):
    import prepare_data

    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("vLLM\nPEFT\n")
    base = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper),
            "--device", "cpu", "--prompt-vocab", "--engine", "transformers"]
    assert prepare_data.main(base + ["--vocab", str(tmp_path / "nope")]) == 1
    assert "vocabulary not found" in capsys.readouterr().err
    assert not (recordings / "talk.vtt").exists()
    assert prepare_data.main(base + ["--vocab", str(vocab)]) == 0
    assert _errors(recordings / "talk.vtt", _seconds(recordings / "talk.mp3")) == []


def test_finetune_transcribe_leaves_the_persons_vtt_and_reports_terms(recordings, tiny_whisper,
                                                                     tmp_path, capsys):
    import finetune

    mine = recordings / "talk.vtt"
    mine.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nvLLM and PEFT and vLLM\n")
    before = mine.read_bytes()
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("vLLM\nPEFT\nGGUF\n")
    audio = recordings / "talk.mp3"
    args = ["transcribe", "--model", str(tiny_whisper), "--vocab", str(vocab), "--device", "cpu",
            "--engine", "transformers", str(audio)]
    assert finetune.main(args) == 0
    out = capsys.readouterr().out
    new = recordings / "talk.finetuned.vtt"
    assert f"wrote {new}" in out
    assert mine.read_bytes() == before
    assert _errors(new, _seconds(audio)) == []
    assert "vLLM" in out and "PEFT" in out and "GGUF" not in out     # only rows that differ
    review = recordings / "talk.review.md"
    assert f"wrote {review}: 1 of 1 cues differ" in out
    assert review.read_text(encoding="utf-8").startswith("# talk.finetuned.vtt beside talk.vtt")
    assert "- yours: **vLLM and PEFT and vLLM**" in review.read_text(encoding="utf-8")
    written = review.read_bytes()
    assert finetune.main(args) == 0                                  # exists: skipped, untouched
    out = capsys.readouterr().out
    assert f"skipped {new}" in out and f"skipped {review}" in out
    assert review.read_bytes() == written


def refresh_review(recordings: Path, monkeypatch) -> list[str]:
    """``finetune.py transcribe`` of talk.mp3 whose talk.finetuned.vtt exists: only the review
    is written, and loading a model fails the test."""
    from vocabtune import transcribe

    def no_loading(cfg):
        raise AssertionError("a model was loaded with nothing to transcribe")

    monkeypatch.setattr(transcribe, "load_engine", no_loading)     # nothing is decoded
    monkeypatch.setattr(transcribe, "with_language", lambda cfg: cfg)
    return transcribe.transcribe_files(_cfg(files=(recordings / "talk.mp3",), suffix=".finetuned.vtt",
                                            language="en"))


def test_a_transcript_kept_from_an_earlier_run_still_gets_its_review(recordings, monkeypatch):
    """The review compares two files on disk: a .finetuned.vtt skipped as existing (made before
    reviews existed, or before the person finished their VTT) is reviewed too, and with
    nothing to transcribe no model is loaded (whisper-small takes seconds)."""
    (recordings / "talk.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello there\n")
    kept = recordings / "talk.finetuned.vtt"
    kept.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello their\n")
    lines = refresh_review(recordings, monkeypatch)
    review = recordings / "talk.review.md"
    assert lines == [f"skipped {kept} (exists; --force redoes it, keeping a backup)",
                     f"wrote {review}: 1 of 1 cues differ, WER 50.0%"]
    assert "- model: hello **their**" in review.read_text(encoding="utf-8")


def test_english_only_model_needs_no_language_or_task(recordings, tiny_whisper_en):
    from vocabtune.transcribe import transcribe_recordings

    [vtt] = transcribe_recordings(_cfg(recordings=recordings, model=str(tiny_whisper_en)))
    assert _errors(vtt, _seconds(recordings / "talk.mp3")) == []


def test_bad_recordings_folder_is_a_clear_error(tmp_path, tiny_whisper):
    from vocabtune.errors import VocabtuneError
    from vocabtune.transcribe import transcribe_recordings

    with pytest.raises(VocabtuneError, match="not found"):
        transcribe_recordings(_cfg(recordings=tmp_path / "missing", model=str(tiny_whisper)))
    (tmp_path / "a.mp3").write_bytes(b"x")
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(VocabtuneError, match="two recordings"):
        transcribe_recordings(_cfg(recordings=tmp_path, model=str(tiny_whisper)))


@pytest.mark.parametrize("device, what", [
    ("gpu", "unknown --device 'gpu'"),
    ("cuda", "torch sees no CUDA GPU"),
    ("mps", "torch sees no Apple MPS device"),
])
def test_a_device_this_machine_lacks_is_one_clear_error(recordings, tiny_whisper, capsys, device, what):
    import prepare_data
    import torch

    if device == "cuda" and torch.cuda.is_available() or device == "mps" and torch.backends.mps.is_available():
        pytest.skip(f"this machine has {device}")
    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper), "--device", device]
    assert prepare_data.main(args) != 0
    err = capsys.readouterr().err
    assert what in err and "--device auto" in err and "Traceback" not in err
    assert not list(recordings.glob("*.vtt"))


# ---------------------------------------------------------------- decode_batch

def test_decode_batch_returns_texts_in_input_order(monkeypatch, tiny_whisper):
    """Clips are decoded longest first; the texts must still come back in input order."""
    from vocabtune import transcribe

    batches = []

    def fake_decode(loaded, arrays, decoding):
        batches.append([len(a) for a in arrays])
        return [f"len{len(a)}" for a in arrays]

    monkeypatch.setattr(transcribe, "_decode_short", fake_decode)
    lengths = [300, 1200, 50, 800, 1200, 10]
    texts = transcribe.decode_batch(None, [np.zeros(n, np.float32) for n in lengths],
                                    language="en", batch_size=4, progress=False)
    assert texts == [f"len{n}" for n in lengths]
    assert batches == [[1200, 1200, 800, 300], [50, 10]]


def test_decode_batch_on_a_real_model_matches_one_by_one(tiny_whisper, clip):
    from vocabtune.audio import decode_audio
    from vocabtune.errors import VocabtuneError
    from vocabtune.modelio import load_whisper
    from vocabtune.transcribe import decode_batch

    loaded = load_whisper(str(tiny_whisper), device="cpu", language="en")
    speech = decode_audio(clip)
    clips = [speech[: SAMPLE_RATE], speech, np.zeros(0, np.float32)]
    together = decode_batch(loaded, clips, language="en", batch_size=3, progress=False)
    alone = [decode_batch(loaded, [c], language="en", progress=False)[0] for c in clips]
    assert len(together) == 3 and together == alone
    assert all("<|" not in t for t in together)
    with pytest.raises(VocabtuneError, match="at most 30 s"):
        decode_batch(loaded, [np.zeros(31 * SAMPLE_RATE, np.float32)], language="en", progress=False)


def test_a_prompted_stock_phrase_over_speech_is_re_decoded_without_the_prompt(monkeypatch):
    """"Thanks for watching!" over 30 s of speech: the span is decoded again unprompted and
    its cues replace it; a sparse span whose unprompted text is no richer stays as it was."""
    from vocabtune import transcribe as T
    from vocabtune.schema import Cue

    calls = []

    def fake_decode(loaded, audio, decoding, bar=None):
        calls.append((len(audio) / 16000, decoding.prompt_ids))
        if len(calls) == 1:
            return [Cue(0.0, 12.0, "one two three four five six seven eight nine ten eleven"),
                    Cue(12.0, 30.0, "twelve thirteen fourteen fifteen sixteen seventeen eighteen")]
        return [Cue(0.0, 20.0, "quiet")]

    monkeypatch.setattr(T, "_decode_cues", fake_decode)
    audio = np.zeros(16000 * 80, dtype=np.float32)
    cues = [Cue(0.0, 10.0, "A real sentence with plenty of words in it, twenty or so words."),
            Cue(10.0, 40.0, "Thanks for watching!"), Cue(50.0, 70.0, "Hm.")]
    prompted = T.Decoding(language="en", prompt_ids=(1, 2, 3), prompt_text="Glossary: X.")
    out = T.rescue_sparse_spans(None, audio, prompted, cues)
    assert [c.text for c in out][:3] == [cues[0].text, "one two three four five six seven eight nine ten eleven",
                                       "twelve thirteen fourteen fifteen sixteen seventeen eighteen"]
    assert (out[1].start, out[1].end, out[2].start, out[2].end) == (10.0, 22.0, 22.0, 40.0)
    assert out[3] == cues[2]                                   # no richer text: kept
    # the 10 s gaps (40-50 s, 70-80 s) are tried too; "quiet" there is no speech: no cue
    assert [round(s) for s, _ in calls] == [30, 10, 20, 10] and all(p == () for _, p in calls)
    assert len(out) == 4
    assert T.rescue_sparse_spans(None, audio, T.Decoding(language="en"), cues) == cues


def test_a_prompted_loop_and_a_skipped_stretch_are_re_decoded_without_the_prompt(monkeypatch):
    from vocabtune import transcribe as T
    from vocabtune.schema import Cue

    speech = " ".join(["word"] * 30)

    def fake_decode(loaded, audio, decoding, bar=None):
        seconds = len(audio) / 16000
        return [Cue(0.0, seconds, "ExLlamaV2 runs on one GPU" if seconds < 10 else speech)]

    monkeypatch.setattr(T, "_decode_cues", fake_decode)
    audio = np.zeros(16000 * 40, dtype=np.float32)
    cues = [Cue(0.0, 5.0, "ExLlamaV2, V3, V3, V3, V3, V3"), Cue(5.0, 15.0, "a fine sentence " * 4),
            Cue(35.0, 40.0, "the end")]                       # 15-35 s: nothing written
    prompted = T.Decoding(language="en", prompt_ids=(1,), prompt_text="Glossary: ExLlamaV2.")
    out = T.rescue_sparse_spans(None, audio, prompted, cues)
    assert [(c.start, c.end, c.text) for c in out] == [
        (0.0, 5.0, "ExLlamaV2 runs on one GPU"), (5.0, 15.0, cues[1].text),
        (15.0, 35.0, speech), (35.0, 40.0, "the end")]
    assert T.loops("V2, V3, V3, V3, V3") and not T.loops("B2, B2, B2 and very very very good")


@pytest.mark.parametrize("rate,channels", [(16000, 1), (44100, 2), (22050, 1)])
def test_in_process_decoding_gives_the_ffmpeg_samples(tmp_path, rate, channels):
    """Transcription decodes with PyAV (no ffmpeg process); it must give exactly what the
    wheel's ffmpeg gives (same resampling and down-mix) and fall back to it on bad files."""
    from vocabtune.audio import _decode_in_process, decode_audio, decode_pcm16, pcm16_to_float
    from vocabtune.errors import VocabtuneError

    t = np.arange(int(rate * 1.5)) / rate
    tone = np.stack([np.sin(2 * np.pi * f * t) * 8000 for f in (220, 330)[:channels]], axis=1)
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(tone.astype(np.int16).tobytes())
    expected = pcm16_to_float(decode_pcm16(path))
    assert np.array_equal(_decode_in_process(path), expected)
    assert np.array_equal(decode_audio(path), expected)
    with pytest.raises(VocabtuneError, match="cannot decode audio"):
        decode_audio(Path(__file__).parent / "data" / "audio" / "corrupt.mp3")


@pytest.mark.parametrize("suffix", [".m4a", ".ogg", ".flac", ".mp3", ".mov", ".3gp", ".aiff", ".wma"])
def test_every_format_decodes_to_the_samples_build_slices(tmp_path, clip, suffix):
    """transcribe's times must be build's: an .m4a (AAC in MP4, whose priming samples only
    the ffmpeg command trims) decoded in process started 14 ms late."""
    import subprocess
    from vocabtune.audio import decode_audio, decode_pcm16, ffmpeg_exe, pcm16_to_float

    path = tmp_path / f"take{suffix}"
    codec = ["-c:a", "aac"] if suffix == ".3gp" else []       # as phones write it (not AMR)
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-t", "3", "-i", str(clip),
                    "-ar", "44100", "-ac", "2", *codec, str(path)], check=True)
    expected = pcm16_to_float(decode_pcm16(path))
    assert np.array_equal(decode_audio(path), expected)


def damaged_copy(clip: Path, path: Path) -> Path:
    """The clip with 4 kB of noise written over its middle, as a broken copy leaves it."""
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def test_a_recording_damaged_in_the_middle_is_decoded_whole_and_named(tmp_path, clip, caplog):
    """faster-whisper's decoder stopped at the damage (half the clip, silently), while
    build's ffmpeg decodes past it: transcribe's draft lacked the rest of the recording."""
    from vocabtune.audio import decode_audio, decode_checked, pcm16_to_float

    path = damaged_copy(clip, tmp_path / "take.mp3")
    decoded = decode_checked(path)
    assert "Header missing" in decoded.damage
    with caplog.at_level(logging.WARNING):
        samples = decode_audio(path)
    assert np.array_equal(samples, pcm16_to_float(decoded.data))
    assert len(samples) > 4 * SAMPLE_RATE                  # the clip is 6 s; ~5 s survive
    assert "take.mp3: damaged audio" in caplog.text and "export it again" in caplog.text
    assert decode_checked(clip).damage is None


def test_a_colon_in_a_relative_file_name_is_not_an_ffmpeg_protocol(tmp_path, clip, monkeypatch):
    from vocabtune.audio import decode_pcm16

    shutil.copy(clip, tmp_path / "talk:drugs.mp3")
    monkeypatch.chdir(tmp_path)
    assert decode_pcm16(Path("talk:drugs.mp3")) == decode_pcm16(tmp_path / "talk:drugs.mp3")


def test_term_diff_counts_the_new_transcript_by_exact_spelling(tmp_path):
    from vocabtune.transcribe import term_diff

    mine, new = tmp_path / "talk.vtt", tmp_path / "talk.finetuned.vtt"
    mine.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nLoRA on vLLM\n")
    new.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nLora on vLLM\n")
    lines = term_diff(mine, new, ["LoRA", "vLLM"])
    assert [line.split() for line in lines[1:]] == [["LoRA", "1", "0"]]
    new.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nLoRA on vLLM\n")
    assert term_diff(mine, new, ["LoRA", "vLLM"]) == ["  all 2 terms match talk.vtt"]


def test_the_transformers_engine_hears_a_language_from_the_language_tokens(tiny_whisper):
    """The first decoder step's probabilities over the language tokens: one of them, a
    probability, and nothing for an English-only model."""
    from vocabtune import transcribe as T
    from vocabtune.modelio import load_whisper

    loaded = load_whisper(str(tiny_whisper), device="cpu", language="en")
    heard = T._heard_language(loaded, np.random.default_rng(0).standard_normal(16000 * 5).astype(np.float32))
    lang_to_id = loaded.model.generation_config.lang_to_id
    assert heard is not None and f"<|{heard[0]}|>" in lang_to_id and 0 < heard[1] <= 1
    loaded.multilingual = False
    assert T._heard_language(loaded, np.zeros(16000, np.float32)) is None


@pytest.mark.parametrize("name, what", [("recordings", "this is a folder; transcribe takes audio files"),
                                        ("nope.mp3", "audio file not found")])
def test_finetune_transcribe_checks_its_files_before_loading_the_model(recordings, monkeypatch, capsys,
                                                                       name, what):
    """Loading (and first converting) a model takes minutes: a folder or a typo is named first."""
    import finetune
    from vocabtune import transcribe

    def no_loading(cfg):
        raise AssertionError("the model was loaded before the files were checked")

    monkeypatch.setattr(transcribe, "load_engine", no_loading)
    path = recordings if name == "recordings" else recordings / name
    assert finetune.main(["transcribe", "--model", "some/model", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"error: {path}: {what}" in err and "Traceback" not in err


def test_two_recordings_of_one_name_into_one_out_folder_are_refused_before_any_work(
        clip, tmp_path, monkeypatch, capsys):
    """The second was "skipped (exists; --force redoes it)" on the transcript the same run had
    just written for the first; with --force it replaced it."""
    import finetune
    from vocabtune import transcribe
    from vocabtune.config import TranscribeConfig

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(clip, tmp_path / folder / "talk.mp3")
    monkeypatch.setattr(transcribe, "load_engine", lambda cfg: pytest.fail("loaded before the check"))
    args = ["transcribe", "--model", "some/model", "--out", str(tmp_path / "out"),
            str(tmp_path / "a" / "talk.mp3"), str(tmp_path / "b" / "talk.mp3")]
    assert finetune.main(args) == 1
    err = capsys.readouterr().err
    assert "would both be transcribed into this file" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    same = TranscribeConfig(files=(tmp_path / "a" / "talk.mp3", tmp_path / "a" / ".." / "a" / "talk.mp3"),
                            suffix=".finetuned.vtt")
    assert list(transcribe.planned_outputs(same).values()) == [tmp_path / "a" / "talk.finetuned.vtt"]


@pytest.mark.parametrize("data", ["café".encode("latin-1"), "café".encode("utf-16"), b""])
def test_a_persons_vtt_that_cannot_be_read_gets_no_review_but_a_line_saying_why(recordings, monkeypatch, data):
    """Before: a review of "0 of yours" cues, every word of the model's an error, the file
    never named. The transcript is kept; the review comes on the next run."""
    mine = recordings / "talk.vtt"
    mine.write_bytes(b"WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello " + data + b"\n" if data else b"")
    kept = recordings / "talk.finetuned.vtt"
    kept.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nhello there\n")
    lines = refresh_review(recordings, monkeypatch)
    assert lines[0].startswith(f"skipped {kept}") and len(lines) == 2
    assert lines[1].startswith(f"no review: {mine}:") and " — " in lines[1]
    assert not (recordings / "talk.review.md").exists()


@pytest.mark.parametrize("text, what", [("{", "invalid JSON"), ("[]", "holds a JSON list")])
def test_a_damaged_generation_config_is_one_line_and_nothing_written(recordings, tiny_whisper, tmp_path,
                                                                    capsys, text, what):
    """transformers only logs it and decodes with defaults lacking Whisper's timestamp
    tokens: a ValueError traceback about no_timestamps_token_id before."""
    import finetune

    model = tmp_path / "merged"
    shutil.copytree(tiny_whisper, model)
    (model / "generation_config.json").write_text(text)
    args = ["transcribe", "--model", str(model), "--device", "cpu", "--engine", "transformers",
            str(recordings / "talk.mp3")]
    assert finetune.main(args) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert "Traceback" not in err and len(lines) == 1
    assert lines[0].startswith(f"error: {model / 'generation_config.json'}:1: {what}") and " — " in lines[0]
    assert sorted(p.name for p in recordings.iterdir()) == ["talk.mp3"]


@pytest.mark.parametrize("engine", ["ctranslate2", "transformers"])
def test_a_ctranslate2_export_as_the_model_names_what_to_pass_instead(recordings, tmp_path, capsys, engine):
    import finetune

    export = tmp_path / "voice-ct2-int8"                  # what finetune.py export writes
    export.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json", "vocabulary.json"):
        (export / name).write_text("{}")
    (export / "vocabtune_export.json").write_text('{"source": "voice-merged", "quantization": "int8"}')
    audio = next(recordings.glob("*.mp3"))
    assert finetune.main(["transcribe", "--model", str(export), "--engine", engine, str(audio)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {export}: a CTranslate2 export (for faster-whisper), not a transformers model")
    assert "exported from (voice-merged)" in err and "Traceback" not in err
