"""check: recordings discovery and splits, spelling hints, and the whole command on real
audio (a 6 s clip made from llm-lingo, a corrupt MP3, and the full llm-lingo set)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

import prepare_data
from vocabtune.check import (CheckReport, check_pairs, check_recordings, load_cues,
                             load_terms, measure_durations)
from vocabtune.errors import VocabtuneError
from vocabtune.recordings import Recording, discover_recordings, split_for
from vocabtune.schema import Cue, Problem, Severity
from vocabtune.spelling import near_misses, spelling_problems

TERMS = ["llama.cpp", "Mixtral 8x7B", "LoRA", "QLoRA", "Phi-2", "TinyLlama", "Hugging Face",
         "Ollama", "Gemma", "DeepSeek-V3", "RoPE", "KV cache"]
CLIP_SECONDS = 6.0


def run_check(recordings: Path, vocab: Path, capsys) -> tuple[int, list[str]]:
    """``prepare_data.py check`` as a person runs it: exit status and printed lines."""
    status = prepare_data.main(["check", "--recordings", str(recordings), "--vocab", str(vocab)])
    return status, capsys.readouterr().out.splitlines()


def found(text: str) -> list[tuple[str, str]]:
    return [(m.found, m.term) for m in near_misses(text, TERMS)]


# --- spelling hints --------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Mixtral 8x7B and LoRA.", "Llama.cpp first. (Llama.cpp again)", "QLoRA is not LoRA twice",
    "Ollama's models", "two Gemmas", "llama.cpp. Then Phi-2, then KV  cache",
    "Phi-3 is another model", "RAG, rag and rope", "open that file, a small model",
])
def test_no_false_alarm(text):
    assert found(text) == []


@pytest.mark.parametrize("text, expected", [
    ("I ran lamma.cpp today", [("lamma.cpp", "llama.cpp")]),
    ("Mixtral 8 x 7B is big", [("Mixtral 8 x 7B", "Mixtral 8x7B")]),
    ("phi 2 and Phi 2", [("phi 2", "Phi-2"), ("Phi 2", "Phi-2")]),
    ("a Tiny Llama and a tiny-llama", [("Tiny Llama", "TinyLlama"), ("tiny-llama", "TinyLlama")]),
    ("HuggingFace hub", [("HuggingFace", "Hugging Face")]),
    ("deep seek v3", [("deep seek v3", "DeepSeek-V3")]),
    ("(Olama)", [("Olama", "Ollama")]),
    # a last letter typed twice is a typo, not a grammatical ending like "Gemmas"
    ("a TinyLlamaa and an Ollamaa", [("TinyLlamaa", "TinyLlama"), ("Ollamaa", "Ollama")]),
    ("the kv-cache grows", [("kv-cache", "KV cache")]),
    # capitals are part of the spelling; a capital first letter only at a sentence start
    ("mixtral 8x7b and MIXTRAL 8X7B", [("mixtral 8x7b", "Mixtral 8x7B"), ("MIXTRAL 8X7B", "Mixtral 8x7B")]),
    ("Lora, LoRA and lora.", [("Lora", "LoRA"), ("lora", "LoRA")]),
    ("we build Llama.cpp", [("Llama.cpp", "llama.cpp")]),
])
def test_near_misses_flagged(text, expected):
    assert found(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Take vitamin c, grade f, then call att.", []),      # the letters, not C++, F#, AT&T
    ("We wrote it in C plus plus.", []),                  # "C" of "C plus plus" is not "C++"
    ("The net result was good.", []),                     # a lone common word, not .NET
    ("We use c++, f# and At&t.", [("c++", "C++"), ("f#", "F#"), ("At&t", "AT&T")]),
])
def test_symbols_said_aloud_are_part_of_the_spelling(text, expected):
    hits = [(m.found, m.term) for m in near_misses(text, ["C++", "F#", "AT&T", ".NET"])]
    assert hits == expected


def test_other_forms_are_not_flagged_and_sharp_s_is_not_ss():
    terms = ["Größenordnung", "Wechselwirkung", "embedding"]
    hits = [(m.found, m.term) for m in near_misses(
        "Grössenordnung, Wechselwirkungen, zwei embeddings, eine Größenordnung", terms)]
    assert hits == [("Grössenordnung", "Größenordnung")]
    assert near_misses("Grössenordnung", terms)[0].edits > 0      # not "written differently"


def test_a_typographic_apostrophe_is_no_misspelling():
    # French typed in Word or on a Mac has "’"; the vocabulary (or Whisper) has "'"
    assert near_misses("une épreuve d’effort, puis l’IRM", ["épreuve d'effort", "IRM"]) == []
    assert near_misses("une épreuve d'effort", ["épreuve d’effort"]) == []


def test_a_sentence_may_start_after_spanish_or_french_opening_marks():
    assert near_misses("¿Metformina? ¡Metformina! « Metformina »", ["metformina"]) == []
    assert [m.found for m in near_misses("la Metformina", ["metformina"])] == ["Metformina"]


def test_a_near_miss_after_an_opening_mark_is_flagged_without_it():
    assert [m.found for m in near_misses("¿Munoz Pena? „Munoz Peña“", ["Muñoz Peña"])] == \
        ["Munoz Pena", "Munoz Peña"]


def test_a_near_miss_after_an_elided_article_is_flagged():
    terms = ["insuffisance rénale", "metformine", "L'Oréal"]
    assert [(m.found, m.term) for m in near_misses("d'insufisance rénale, qu'une metformin", terms)] == \
        [("insufisance rénale", "insuffisance rénale"), ("metformin", "metformine")]
    assert near_misses("d'insuffisance rénale chez L'Oréal", terms) == []


def test_spelling_problems_are_warnings_at_the_cue_line():
    (p,) = spelling_problems([Cue(0, 1, "use lamma.cpp", 7)], TERMS, "a.vtt")
    assert (p.severity, p.file, p.line) == (Severity.WARNING, "a.vtt", 7)
    assert p.hint == 'did you mean "llama.cpp"?'


# --- recordings ------------------------------------------------------------------------

@pytest.mark.parametrize("name, split", [
    ("validation.mp3", "validation"), ("Validation.MP3", "validation"), ("val.m4a", "validation"),
    ("val_2.wav", "validation"), ("dev-take3.flac", "validation"), ("VAL2.ogg", "validation"),
    ("train.mp3", "train"), ("development.mp3", "train"), ("valentine.mp3", "train"),
    ("devices.mp3", "train"), ("my-validation.mp3", "train"),
    ("valid.mp3", "validation"), ("Valid-2.wav", "validation"), ("validity.mp3", "train"),
    ("test.mp3", "train"),                      # bench/demo.sh's general-speech set is a lone test.mp3
    ("Valérie au téléphone.m4a", "train"), ("Validé 2.m4a", "train"), ("Devşirme.mp3", "train"),
    ("Val 2.m4a", "validation"), ("dev2.mp3", "validation"), ("Valid_é.m4a", "validation"),
])
def test_split_rule(name, split):
    assert split_for(name) == split


def touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"")


def test_discovery_pairs_and_ignores_derived_files(tmp_path):
    touch(tmp_path, "train.mp3", "train.vtt", "train.finetuned.vtt", "train.suggested.vtt",
          "train.20240101-120000.bak.vtt", "train-script.txt", "notes.md", ".train.mp3.swp",
          "Val.WAV", "Val.vtt")
    recordings, problems = discover_recordings(tmp_path)
    assert problems == []
    assert recordings == [Recording(tmp_path / "Val.WAV", tmp_path / "Val.vtt", "validation"),
                          Recording(tmp_path / "train.mp3", tmp_path / "train.vtt", "train")]


def test_what_recording_apps_write_is_a_recording(tmp_path):
    names = ["a.aiff", "b.AIF", "c.caf", "d.mov", "e.3gp", "f.amr", "g.wma", "h.mkv"]
    touch(tmp_path, *names, *(Path(n).stem + ".vtt" for n in names))
    recordings, problems = discover_recordings(tmp_path)
    assert [r.name for r in recordings] == names and problems == []


def test_discovery_problems(tmp_path):
    touch(tmp_path, "a.mp3", "a.wav", "a.vtt", "b.mp3", "orphan.vtt")
    recordings, problems = discover_recordings(tmp_path)
    assert len(recordings) == 3
    by_file = {(Path(p.file).name, p.severity): p for p in problems}
    assert "two recordings" in by_file["a.wav", Severity.ERROR].message
    assert "transcribe" in by_file["b.mp3", Severity.ERROR].hint
    assert "has no recording" in by_file["orphan.vtt", Severity.ERROR].message
    assert len(problems) == 3


def test_two_caption_files_for_one_recording_are_an_error(tmp_path):
    touch(tmp_path, "Talk.MP3", "Talk.VTT", "Talk.vtt")
    recordings, (problem,) = discover_recordings(tmp_path)
    assert problem.severity is Severity.ERROR and "two caption files" in problem.message
    assert "Talk.VTT" in problem.message and "Talk.vtt" in problem.message


def test_recordings_in_a_subfolder_are_named_not_silently_left_out(tmp_path):
    touch(tmp_path, "train.mp3", "train.vtt")
    (tmp_path / "day2" / "more").mkdir(parents=True)
    touch(tmp_path / "day2", "take-3.m4a", "take-3.vtt", "notes.txt")
    touch(tmp_path / "day2" / "more", "val.WAV")
    (tmp_path / "__MACOSX").mkdir()
    touch(tmp_path / "__MACOSX", "._train.mp3")                  # what unzipping on a Mac leaves
    (tmp_path / "empty").mkdir()
    recordings, (problem,) = discover_recordings(tmp_path)
    assert [r.name for r in recordings] == ["train.mp3"]
    assert (problem.severity, problem.file) == (Severity.WARNING, str(tmp_path / "day2"))
    assert "not used: 2 recording(s)" in problem.message and "take-3.m4a" in problem.message
    assert str(tmp_path) in problem.hint


def test_memos_only_in_folders_per_day_are_pointed_at_not_asked_for(tmp_path):
    from vocabtune.transcribe import audio_files

    """A phone's export: a folder per day, nothing at the top. "No recordings found — add
    audio files" asked for what was there; the error says where they are and what to do."""
    for day, names in (("2026-11-04", ("Memo 2026-11-04 09.41.m4a", "Memo 2026-11-04 08.10.m4a")),
                       ("2026-11-03", ("New Recording 12.m4a",))):
        (tmp_path / day).mkdir()
        touch(tmp_path / day, *names)
    recordings, (error, *warnings) = discover_recordings(tmp_path)
    assert recordings == [] and error.severity is Severity.ERROR
    assert "only in subfolders" in error.message and str(tmp_path) in error.hint
    assert [Path(w.file).name for w in warnings] == ["2026-11-03", "2026-11-04"]
    assert "(Memo 2026-11-04 08.10.m4a, Memo 2026-11-04 09.41.m4a)" in warnings[1].message
    with pytest.raises(VocabtuneError, match="only in subfolders"):
        audio_files(tmp_path)                     # what transcribe finds to do


def test_captions_saved_under_another_name_are_named_not_transcribed_over(tmp_path):
    # "run transcribe" would have made a fresh draft beside the person's corrected file
    touch(tmp_path, "a.mp3", "a.srt", "b.mp3", "b.vtt.txt", "c.mp3", "c.mp3.part", "c-script.txt")
    _, problems = discover_recordings(tmp_path)
    by_file = {Path(p.file).name: p for p in problems}
    assert by_file["a.mp3"].message == "recording has no caption file a.vtt (there is a.srt)"
    assert "webvtt.from_srt('" + (tmp_path / "a.srt").as_posix() in by_file["a.mp3"].hint
    assert by_file["b.mp3"].hint == "if it holds your corrections, rename it to b.vtt"
    assert "transcribe" in by_file["c.mp3"].hint


def test_discovery_empty_and_missing_folder(tmp_path):
    recordings, (problem,) = discover_recordings(tmp_path)
    assert recordings == [] and "no recordings" in problem.message
    with pytest.raises(VocabtuneError, match="not found"):
        discover_recordings(tmp_path / "nope")


# --- the report ------------------------------------------------------------------------

def test_summary_line():
    report = CheckReport([Problem(Severity.WARNING, "a", 1, "w")], recordings=2, cues=82)
    assert report.summary() == "checked 2 recordings, 82 cues: 0 errors, 1 warning"
    report.notes.append("no vocabulary in v: spelling hints skipped")
    assert report.summary().endswith("(no vocabulary in v: spelling hints skipped)")


def test_check_pairs_uses_given_durations_and_parsed_cues(tmp_path):
    """build's path: durations it already knows, cues parsed once; nothing decoded here."""
    vtt = tmp_path / "t.vtt"
    vtt.write_text("WEBVTT\n\n00:00.000 --> 00:05.000\nlamma.cpp\n\n00:05.000 --> 00:09.000\nb\n")
    rec = Recording(tmp_path / "t.mp3", vtt, "train")        # no audio file: never read
    parsed = load_cues([rec])
    report = check_pairs([rec], {rec.audio: 8.0}, ["llama.cpp"], parsed)
    assert [(p.line, p.severity) for p in report.problems] == [(3, Severity.WARNING), (6, Severity.ERROR)]
    assert (report.recordings, report.cues) == (1, 2)
    assert check_pairs([rec], {}, [], parsed).problems == []   # unknown length: no end check
    assert parsed.cues[rec.audio][0] == Cue(0.0, 5.0, "lamma.cpp", 3)


def test_load_terms_optional_and_broken(tmp_path):
    assert load_terms(tmp_path / "missing")[0:2] == ([], [])
    (tmp_path / "terms.txt").write_text("LoRA\nlora\n")
    terms, (problem,), notes = load_terms(tmp_path)
    assert terms == [] and problem.severity is Severity.ERROR and problem.line == 2


def test_load_terms_reads_a_txt_file_in_any_capitals(tmp_path):
    # read_vocab (build, script) reads TERMS.TXT; check skipped its hints as "no vocabulary"
    (tmp_path / "TERMS.TXT").write_text("LoRA\n")
    assert load_terms(tmp_path) == (["LoRA"], [], [])


def test_load_terms_names_a_vocabulary_in_a_file_it_cannot_read(tmp_path):
    # terms.csv alone was "no vocabulary: spelling hints skipped", and build went on without it
    (tmp_path / "terms.csv").write_text("LoRA\n")
    terms, (problem,), notes = load_terms(tmp_path)
    assert problem.severity is Severity.ERROR and "terms.csv not read" in problem.message


# --- real audio ------------------------------------------------------------------------

@pytest.fixture
def folder(tmp_path, data_dir):
    """recordings/ with the 6 s clip and its clean captions, vocab/ with a few terms."""
    rec = tmp_path / "recordings"
    rec.mkdir()
    shutil.copy(data_dir / "audio" / "clip.mp3", rec / "train.mp3")
    shutil.copy(data_dir / "vtt" / "clip.vtt", rec / "train.vtt")
    vocab = tmp_path / "vocab"
    vocab.mkdir()
    (vocab / "terms.txt").write_text("PEFT\nllama.cpp\n")
    return tmp_path


def test_durations_of_real_and_corrupt_audio(data_dir):
    recs = [Recording(data_dir / "audio" / n, None, "train") for n in ("clip.mp3", "corrupt.mp3")]
    durations, (problem,) = measure_durations(recs)
    assert durations[recs[0].audio] == pytest.approx(CLIP_SECONDS, abs=0.05)
    assert durations[recs[1].audio] is None
    assert problem.file.endswith("corrupt.mp3") and "unreadable audio" in problem.message


def test_a_damaged_recording_is_a_warning_in_check_and_build(folder, data_dir, capsys, tmp_path, caplog):
    """ffmpeg decodes past damaged data (exit 0) and drops that stretch: the recording is
    shorter than it was, so check and build say so rather than pass it as whole."""
    from test_transcribe import damaged_copy
    from vocabtune.build import build_dataset
    from vocabtune.config import BuildConfig

    rec = folder / "recordings"
    damaged_copy(data_dir / "audio" / "clip.mp3", rec / "train.mp3")
    (rec / "train.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:04.000\nsome words\n")
    status, out = run_check(rec, folder / "vocab", capsys)
    assert status == 0
    assert out[0].startswith(f"{rec / 'train.mp3'}: warning: damaged audio — ffmpeg said \"Header missing\"")
    assert out[-1].endswith("0 errors, 1 warning")
    with caplog.at_level(logging.WARNING), pytest.raises(VocabtuneError, match="cannot hold out"):
        build_dataset(BuildConfig(recordings=rec, vocab=folder / "vocab", out=tmp_path / "ds"))
    assert "train.mp3: warning: damaged audio" in caplog.text        # and then went on


def test_a_silent_recording_is_an_error_in_check_and_build(folder, tmp_path, capsys):
    """Stereo whose channels cancel (one wired in reverse) down-mixes to silence: its cues
    would teach Whisper words over nothing."""
    import wave

    import numpy as np
    from vocabtune.build import build_dataset
    from vocabtune.config import BuildConfig

    rec = folder / "recordings"
    t = np.arange(3 * 44100) / 44100
    voice = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)
    with wave.open(str(rec / "validation.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(np.stack([voice, -voice], axis=1).tobytes())
    (rec / "validation.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nsome words\n")
    status, out = run_check(rec, folder / "vocab", capsys)
    assert status == 1
    assert out[0].startswith(f"{rec / 'validation.wav'}: error: the recording is silent")
    assert out[-1].endswith("1 error, 0 warnings")
    with pytest.raises(VocabtuneError, match="validation.wav: error: the recording is silent"):
        build_dataset(BuildConfig(recordings=rec, vocab=folder / "vocab", out=tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()


def test_a_video_without_sound_is_named_as_such(folder, capsys):
    import subprocess
    from vocabtune.audio import ffmpeg_exe

    rec = folder / "recordings"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=black:s=64x64:d=1:r=5", str(rec / "screen.mp4")], check=True)
    (rec / "screen.vtt").write_text("WEBVTT\n\n00:00:00.100 --> 00:00:00.900\nsome words\n")
    status, out = run_check(rec, folder / "vocab", capsys)
    line = out[0]
    assert status == 1
    assert line.startswith(f"{rec / 'screen.mp4'}: error: unreadable audio: cannot decode audio "
                           "(the file has no audio track) — is it a video recorded without sound")


def test_clean_folder_passes(folder, capsys):
    status = prepare_data.main(["check", "--recordings", str(folder / "recordings"),
                                "--vocab", str(folder / "vocab")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.strip() == "checked 1 recording, 1 cue: 0 errors, 0 warnings"


def test_broken_folder_fails_with_file_line_messages(folder, data_dir, capsys):
    rec = folder / "recordings"
    (rec / "train.vtt").write_text(
        "WEBVTT\n\n00:00:00.495 --> 00:00:04.896\nuse lamma.cpp\n\n"
        "00:00:04.000 --> 00:00:07.000\npast the end and overlapping\n\n"
        "00:00:07.000 --> 00:00:4x.000\nbad\n")
    shutil.copy(data_dir / "audio" / "corrupt.mp3", rec / "validation.mp3")
    (rec / "validation.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:01.000\nhi\n")
    status, out = run_check(rec, folder / "vocab", capsys)
    vtt = rec / "train.vtt"
    assert status == 1
    assert [line.split(": ")[0:2] for line in out[:-1]] == [
        [f"{rec / 'validation.mp3'}", "error"], [f"{vtt}:3", "warning"], [f"{vtt}:6", "error"],
        [f"{vtt}:6", "error"], [f"{vtt}:9", "error"]]
    assert "unreadable audio" in out[0]
    assert out[1].endswith('"lamma.cpp" is close to the vocabulary term "llama.cpp" — did you mean "llama.cpp"?')
    assert {"overlaps the cue on line 3", "after the end of the audio"} <= {
        m for m in ("overlaps the cue on line 3", "after the end of the audio") for line in out[2:4] if m in line}
    assert "cannot read the timing line" in out[4]
    assert out[-1] == "checked 2 recordings, 3 cues: 4 errors, 1 warning"


def test_missing_vocab_is_a_note_not_an_error(folder, capsys):
    assert prepare_data.main(["check", "--recordings", str(folder / "recordings"),
                              "--vocab", str(folder / "none")]) == 0
    assert "spelling hints skipped" in capsys.readouterr().out


@pytest.mark.shared
def test_llm_lingo_has_no_errors(llm_lingo, tmp_path):
    rec = tmp_path / "recordings"
    rec.mkdir()
    for name in ("train.mp3", "train.vtt", "validation.mp3", "validation.vtt"):
        shutil.copy(llm_lingo / name, rec / name)
    report = check_recordings(rec, llm_lingo / "terms.txt")
    assert report.errors == [], [str(p) for p in report.errors]
    assert report.recordings == 2 and report.cues > 50
    assert [r.split for r in discover_recordings(rec)[0]] == ["train", "validation"]


def test_discovery_pairs_names_that_differ_only_in_unicode_form(tmp_path):
    decomposed, composed = "U\u0308ni\u0308code talk", "Ünïcode talk"      # as macOS / an editor writes
    touch(tmp_path, f"{decomposed}.mp3", f"{composed}.vtt")
    recordings, problems = discover_recordings(tmp_path)
    assert problems == []
    assert recordings == [Recording(tmp_path / f"{decomposed}.mp3", tmp_path / f"{composed}.vtt", "train")]


def test_a_caption_file_two_recordings_share_is_reported_once(tmp_path, data_dir, capsys):
    rec = tmp_path / "recordings"
    rec.mkdir()
    shutil.copy(data_dir / "audio" / "clip.mp3", rec / "train.mp3")
    shutil.copy(data_dir / "audio" / "clip.mp3", rec / "train.m4a")     # the same take, twice
    (rec / "train.vtt").write_text("WEBVTT\n\n00:00:00.495 --> 00:00:01.600\nThe PEFT <s> docs\n\n"
                                   "00:00:03.800 --> 00:00:03.000\ninto the base weights.\n")
    status, out = run_check(rec, tmp_path / "none", capsys)
    assert status == 1
    assert [line.split(": ")[0] for line in out[:-1]] == [
        str(rec / "train.mp3"), f"{rec / 'train.vtt'}:4", f"{rec / 'train.vtt'}:6"]
    assert out[-1].startswith("checked 2 recordings, 2 cues: 2 errors, 1 warning")
