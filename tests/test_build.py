"""``prepare_data.py build``: the summary table (pure), then real builds on tiny hand-made
audio and on ../shared/data/llm-lingo, read back with ``datasets.load_from_disk``."""

from __future__ import annotations

import json
import logging
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from datasets import DatasetDict, load_from_disk

import prepare_data
from vocabtune.build import build_dataset, default_dataset_dir, default_out
from vocabtune.config import MAX_CHUNK_S, SAMPLE_RATE, BuildConfig
from vocabtune.dataset import example_audio, load_dataset_dir, read_metadata
from vocabtune.errors import VocabtuneError
from vocabtune.captions import validate_cues
from vocabtune.schema import Chunk, Cue, Severity
from vocabtune.summary import format_summary, split_stats

log = logging.getLogger(__name__)


# --- the summary table (pure) -----------------------------------------------------------

def chunks_of(*texts: str, seconds: float = 6.0) -> list[Chunk]:
    return [Chunk("r.mp3", (Cue(i * 10.0, i * 10.0 + seconds, t),)) for i, t in enumerate(texts)]


def test_split_stats_count_terms_per_chunk_with_exact_spelling():
    stats = split_stats(chunks_of("LoRA and QLoRA", "lora again, vLLM", "nothing"), ["LoRA", "vLLM", "GGUF"])
    assert stats.chunks == 3 and stats.audio_s == 18.0
    assert stats.term_counts == {"LoRA": 2, "vLLM": 1, "GGUF": 0}


def test_summary_flags_missing_and_under_represented_terms():
    terms = ["LoRA", "vLLM", "GGUF"]
    stats = {"train": split_stats(chunks_of("LoRA vLLM", "LoRA vLLM", "LoRA vLLM GGUF"), terms),
             "validation": split_stats(chunks_of("LoRA", seconds=30.0), terms)}
    text = format_summary(stats, terms)
    rows = {line.split("  ")[0].strip(): line for line in text.splitlines()}
    assert rows["train"].split()[1:] == ["3", "0.30"]
    assert rows["validation"].split()[1:] == ["1", "0.50"]
    assert rows["total"].split()[1:] == ["4", "0.80"]
    assert rows["LoRA"].split() == ["LoRA", "3", "1"]
    assert rows["vLLM"].split()[:3] == ["vLLM", "3", "0"] and "never in validation" in rows["vLLM"]
    assert "under-represented in train" in rows["GGUF"] and "never in validation" in rows["GGUF"]
    assert "2 of 3 terms never occur in validation" in text and "GGUF, vLLM" not in text
    assert "1 of 3 terms occur fewer than 3 times in train" in text


def test_summary_columns_are_aligned():
    terms = ["a", "a much longer term"]
    stats = {"train": split_stats(chunks_of("a " * 12), terms),
             "validation": split_stats(chunks_of("a much longer term"), terms)}
    table = format_summary(stats, terms).split("\n\n")[1].splitlines()
    header, rule, *rows = table
    starts = [i for i, ch in enumerate(rule) if ch == "-" and (i == 0 or rule[i - 1] == " ")]
    ends = [i for i, ch in enumerate(rule) if ch == "-" and (i + 1 == len(rule) or rule[i + 1] == " ")]
    for row in rows:           # right-aligned counts end exactly under their column's rule
        assert row[ends[1]] != " " and row[ends[2]] != " "
        assert row[ends[1] + 1] == " "
    assert header.startswith("term") and len(starts) == 4


def test_summary_says_when_every_term_is_covered():
    stats = {"train": split_stats(chunks_of("x x x"), ["x"]),
             "validation": split_stats(chunks_of("x"), ["x"])}
    assert format_summary(stats, ["x"]).endswith("at least once in validation")


# --- output folder defaults ----------------------------------------------------------------

def test_default_out_is_named_for_the_folder(tmp_path):
    assert default_out(tmp_path / "my-voice" / "recordings") == Path("data/my-voice")
    assert default_out(tmp_path / "llm-lingo") == Path("data/llm-lingo")


def test_default_out_of_recordings_in_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "me").mkdir()
    monkeypatch.chdir(tmp_path / "me")
    assert default_out(Path("recordings")) == Path("data/me")


def test_default_dataset_dir(tmp_path):
    with pytest.raises(VocabtuneError, match="no dataset found"):
        default_dataset_dir(tmp_path)
    for name in ("one", ".one.building-x", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "one" / "dataset_dict.json").write_text("{}")
    (tmp_path / ".one.building-x" / "dataset_dict.json").write_text("{}")
    assert default_dataset_dir(tmp_path) == tmp_path / "one"
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "dataset_dict.json").write_text("{}")
    with pytest.raises(VocabtuneError, match="several datasets") as err:
        default_dataset_dir(tmp_path)
    assert "--dataset" in str(err.value)


# --- real builds on tiny hand-made audio -------------------------------------------------

def write_wav(path: Path, seconds: float, rate: int = 22050) -> None:
    """A tone at a rate ffmpeg must resample, so the build's decoding is exercised for real."""
    t = np.arange(int(seconds * rate)) / rate
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def write_vtt(path: Path, cues: list[tuple[float, float, str]]) -> None:
    def ts(s: float) -> str:
        return f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}:{s % 60:06.3f}"
    body = "".join(f"{ts(a)} --> {ts(b)}\n{text}\n\n" for a, b, text in cues)
    path.write_text("WEBVTT\n\n" + body, encoding="utf-8")


TRAIN_CUES = [(0.5 + 8 * i, 7.5 + 8 * i, f"sentence {i} about LoRA") for i in range(6)]   # 48 s
VAL_CUES = [(0.2, 4.0, "serving with vLLM"), (4.5, 9.0, "and LoRA once more")]


@pytest.fixture
def project(tmp_path) -> Path:
    """tmp/recordings/{train,validation}.{wav,vtt} and tmp/vocab/terms.txt."""
    rec = tmp_path / "recordings"
    rec.mkdir()
    write_wav(rec / "train.wav", 49.0)
    write_vtt(rec / "train.vtt", TRAIN_CUES)
    write_wav(rec / "validation.wav", 10.0)
    write_vtt(rec / "validation.vtt", VAL_CUES)
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "terms.txt").write_text("LoRA\nvLLM\n")
    return tmp_path


def config(root: Path, **kw) -> BuildConfig:
    return BuildConfig(recordings=root / "recordings", vocab=root / "vocab",
                       out=root / "data" / "me", **kw)


def assert_audio_matches_times(out: Path) -> DatasetDict:
    ds = load_from_disk(str(out))
    assert set(ds) == {"train", "validation"}
    readable = load_dataset_dir(out)
    for split in ("train", "validation"):
        for row in readable[split]:
            samples = example_audio(row)
            assert abs(len(samples) - (row["end"] - row["start"]) * SAMPLE_RATE) <= 1
            assert 0 < row["end"] - row["start"] <= MAX_CHUNK_S
    return readable


def test_build_writes_chunks_with_their_audio(project):
    result = build_dataset(config(project))
    assert result.out == project / "data" / "me"
    ds = assert_audio_matches_times(result.out)
    train = ds["train"]
    assert train["source"] == ["train.wav", "train.wav"]
    assert (train["start"][0], train["end"][0]) == (0.5, 23.5)       # 3 cues of 7 s, 1 s gaps
    assert train["text"][0] == "sentence 0 about LoRA sentence 1 about LoRA sentence 2 about LoRA"
    assert ds["validation"]["text"] == ["serving with vLLM and LoRA once more"]
    assert [(c["start"], c["end"]) for c in ds["validation"][0]["cues"]] == [(0.0, 3.8), (4.3, 8.8)]
    assert result.stats["train"].term_counts == {"LoRA": 6, "vLLM": 0}
    assert "under-represented" in result.summary and "vLLM" in result.summary
    meta = read_metadata(result.out)
    assert meta["splits"]["validation"]["term_counts"] == {"LoRA": 1, "vLLM": 1}
    assert meta["validation"] == {"rule": "recording"} and meta["terms"] == ["LoRA", "vLLM"]
    assert meta["commands"] == ["prepare_data.py build --recordings recordings --vocab vocab"]
    assert {r["file"]: r["split"] for r in meta["recordings"]} == \
        {"train.wav": "train", "validation.wav": "validation"}
    assert meta["language"] is None                 # hand-written VTTs name no language


def test_build_records_the_language_transcribe_wrote_in_the_header(project):
    vtt = project / "recordings" / "train.vtt"
    vtt.write_text(vtt.read_text().replace("WEBVTT\n", "WEBVTT\nLanguage: de\n", 1))
    assert read_metadata(build_dataset(config(project)).out)["language"] == "de"


def test_each_recording_is_decoded_once(project, monkeypatch):
    import vocabtune.audio
    import vocabtune.build
    import vocabtune.check
    calls = []
    real = vocabtune.audio.decode_checked

    def counting(path):
        calls.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(vocabtune.build, "decode_checked", counting)
    monkeypatch.setattr(vocabtune.check, "decode_checked", counting)
    build_dataset(config(project))
    assert sorted(calls) == ["train.wav", "validation.wav"]


@pytest.mark.parametrize("text, warning", [
    ("", "empty cue text"),
    # "..." typed for words one could not make out: trained on, Whisper writes "..." there
    (" ... ", 'cue text "..." has no words'),
])
def test_warnings_do_not_block_and_a_cue_without_words_gives_no_audio(project, caplog, text, warning):
    cues = TRAIN_CUES[:2] + [(16.5, 23.5, text)] + TRAIN_CUES[3:]
    write_vtt(project / "recordings" / "train.vtt", cues)
    with caplog.at_level(logging.WARNING):
        ds = load_dataset_dir(build_dataset(config(project)).out)
    assert warning in caplog.text
    spans = list(zip(ds["train"]["start"], ds["train"]["end"]))
    assert spans == [(0.5, 15.5), (24.5, 47.5)]            # 16.5-23.5 is in no chunk


def test_build_refuses_on_check_errors_and_writes_nothing(project):
    write_vtt(project / "recordings" / "train.vtt",
              TRAIN_CUES + [(48.0, 52.0, "past the end of the audio")])
    with pytest.raises(VocabtuneError) as err:
        build_dataset(config(project))
    assert "prepare_data.py check" in str(err.value) and "train.vtt" in str(err.value)
    assert not (project / "data").exists()


def test_what_check_lets_through_builds(project):
    """check's tolerances are build's: a last cue a few ms past the decoded audio (MP3
    padding) and a zero-length cue (warned about, left out) must not fail the build."""
    cues = TRAIN_CUES[:5] + [(40.5, 40.5, "said in no time"), (41.0, 49.03, "the last one")]
    write_vtt(project / "recordings" / "train.vtt", cues)
    ds = load_dataset_dir(build_dataset(config(project)).out)
    assert ds["train"]["end"][-1] == 49.03 and "said in no time" not in " ".join(ds["train"]["text"])
    assert len(example_audio(ds["train"][-1])) == round((49.0 - ds["train"]["start"][-1]) * SAMPLE_RATE)


def test_a_cue_nested_in_the_one_before_is_a_check_error(project):
    cues = [(0.5, 5.1, "around"), (4.95, 5.0, "inside")] + TRAIN_CUES[1:]
    write_vtt(project / "recordings" / "train.vtt", cues)
    with pytest.raises(VocabtuneError, match="prepare_data.py check") as err:
        build_dataset(config(project))
    assert "inside" in str(err.value) or "train.vtt" in str(err.value)
    problems = validate_cues([Cue(a, b, t, 3 + 3 * i) for i, (a, b, t) in enumerate(cues)], "train.vtt")
    assert [(p.line, p.severity, p.message) for p in problems] == [
        (6, Severity.ERROR, "cue lies entirely inside the cue on line 3")]


def test_cue_over_30_s_is_an_error_not_dropped(project):
    write_vtt(project / "recordings" / "train.vtt", [(1.0, 32.0, "one very long cue")])
    with pytest.raises(VocabtuneError, match="train.vtt"):
        build_dataset(config(project))
    assert not (project / "data").exists()


def test_empty_vtt_is_a_clear_error(project):
    (project / "recordings" / "train.vtt").write_text("WEBVTT\n\n", encoding="utf-8")
    with pytest.raises(VocabtuneError) as err:
        build_dataset(config(project))
    assert "train.vtt" in str(err.value)
    assert "Traceback" not in str(err.value)
    assert not (project / "data").exists()


def test_captions_with_only_empty_cues_are_a_check_error(project, capsys):
    write_vtt(project / "recordings" / "train.vtt", [(1.0, 3.0, ""), (4.0, 6.0, "")])
    # what check passes, build builds: check passed this file with two warnings
    assert prepare_data.main(["check", "--recordings", str(project / "recordings"),
                              "--vocab", str(project / "vocab")]) == 1
    assert "train.vtt: error: no cue has both text and a length" in capsys.readouterr().out
    with pytest.raises(VocabtuneError, match="no cue has both text and a length") as err:
        build_dataset(config(project))
    assert "train.vtt" in str(err.value)
    assert not (project / "data").exists()


def test_out_folder_of_other_files_is_refused_before_any_work(project, monkeypatch):
    import vocabtune.build
    (project / "data" / "me").mkdir(parents=True)
    (project / "data" / "me" / "thesis.tex").write_text("precious")
    monkeypatch.setattr(vocabtune.build, "decode_checked", lambda path: pytest.fail("decoded"))
    with pytest.raises(VocabtuneError, match="does not hold a dataset"):
        build_dataset(config(project))
    assert (project / "data" / "me" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("where", ["under a file", "in /proc"])
def test_an_out_that_cannot_be_written_is_refused_before_any_work(project, monkeypatch, where):
    import vocabtune.build
    if where == "in /proc" and not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    (project / "notes.txt").write_text("mine")
    out = project / "notes.txt" / "me" if where == "under a file" else Path("/proc/vocabtune-test/me")
    monkeypatch.setattr(vocabtune.build, "decode_checked", lambda path: pytest.fail("decoded"))
    with pytest.raises(VocabtuneError, match="cannot write a dataset here") as err:
        build_dataset(BuildConfig(recordings=project / "recordings", vocab=project / "vocab", out=out))
    assert err.value.file == str(out) and "--out" in err.value.hint
    assert (project / "notes.txt").read_text() == "mine"


def test_a_failed_write_is_one_clear_error_and_leaves_nothing(project, monkeypatch):
    import vocabtune.dataset

    def full(dataset, path):
        (path / "half.arrow").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(vocabtune.dataset, "_save_quietly", full)
    with pytest.raises(VocabtuneError, match="No space left on device") as err:
        build_dataset(config(project))
    assert "nothing was changed" in str(err.value)
    assert list((project / "data").iterdir()) == []


def test_failed_rebuild_keeps_the_old_dataset(project, monkeypatch):
    out = build_dataset(config(project)).out
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    write_vtt(project / "recordings" / "validation.vtt", VAL_CUES[:1])

    def crash(self, path, *args, **kwargs):
        (Path(path) / "train").mkdir(parents=True)          # something half-written ...
        raise KeyboardInterrupt                             # ... then Ctrl-C

    monkeypatch.setattr(DatasetDict, "save_to_disk", crash)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(config(project))
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["me"]


def only_train(project: Path) -> None:
    for suffix in (".wav", ".vtt"):
        (project / "recordings" / f"validation{suffix}").unlink()


def test_validation_fraction_holds_out_whole_chunks(project):
    only_train(project)
    write_vtt(project / "recordings" / "train.vtt", [(0.5 + 4 * i, 4.0 + 4 * i, f"c{i}") for i in range(12)])
    result = build_dataset(config(project, validation_fraction=0.5, max_chunk_s=4.0))
    ds = assert_audio_matches_times(result.out)
    assert len(ds["train"]) == len(ds["validation"]) == 6
    assert sorted(list(ds["train"]["text"]) + list(ds["validation"]["text"]), key=lambda t: int(t[1:])) == \
        [f"c{i}" for i in range(12)]
    assert read_metadata(result.out)["validation"] == {"rule": "fraction", "fraction": 0.5, "seed": 0}


def test_memos_without_a_validation_recording_say_where_each_went(project, caplog):
    """Voice memos, none named validation*: the chunks held out bring the vocabulary into
    validation, the log names the memos they came from, and vocabtune.json records each
    memo's split as built (it said "train" for all of them)."""
    only_train(project)
    (project / "recordings" / "train.wav").unlink()
    (project / "recordings" / "train.vtt").unlink()
    texts = ["plain words"] * 6 + ["serving with vLLM", "vLLM again", "LoRA here", "LoRA there"]
    for i, text in enumerate(texts):
        write_wav(project / "recordings" / f"Memo {i:02d}.wav", 3.0)
        write_vtt(project / "recordings" / f"Memo {i:02d}.vtt", [(0.2, 2.5, text)])
    with caplog.at_level(logging.INFO):
        result = build_dataset(config(project, validation_fraction=0.2))
    held = [r for r in read_metadata(result.out)["recordings"] if r["split"] == "validation"]
    assert sorted(r["file"] for r in held) in (["Memo 06.wav", "Memo 08.wav"], ["Memo 06.wav", "Memo 09.wav"],
                                               ["Memo 07.wav", "Memo 08.wav"], ["Memo 07.wav", "Memo 09.wav"])
    assert f"from {held[0]['file']} and {held[1]['file']}" in caplog.text
    assert "decoded 10 recordings (0.5 min)" in caplog.text      # one line, not one per memo
    assert not [r for r in caplog.records if r.levelno >= logging.INFO and "Memo 03" in r.getMessage()]
    assert result.stats["validation"].term_counts == {"LoRA": 1, "vLLM": 1}


def test_the_recordings_named_as_validation_are_named_in_the_log(project, caplog):
    """One memo called "Dev sync" is the whole validation split: the build says so."""
    only_train(project)
    write_wav(project / "recordings" / "Dev sync.wav", 3.0)
    write_vtt(project / "recordings" / "Dev sync.vtt", [(0.2, 2.5, "LoRA and vLLM")])
    with caplog.at_level(logging.INFO):
        build_dataset(config(project))
    assert "validation: Dev sync.wav (named validation*/valid*/val*/dev*; 0.04 of 0.81 min)" in caplog.text


def test_no_validation_recording_and_no_fraction_holds_out_a_tenth(project):
    only_train(project)
    write_vtt(project / "recordings" / "train.vtt", [(0.5 + 2 * i, 2.0 + 2 * i, f"c{i}") for i in range(20)])
    ds = load_dataset_dir(build_dataset(config(project, max_chunk_s=2.0)).out)
    assert (len(ds["train"]), len(ds["validation"])) == (18, 2)


def test_fraction_is_ignored_when_a_validation_recording_exists(project, caplog):
    with caplog.at_level(logging.WARNING):
        ds = load_dataset_dir(build_dataset(config(project, validation_fraction=0.5)).out)
    assert set(ds["validation"]["source"]) == {"validation.wav"}
    assert "--validation-fraction ignored" in caplog.text


def test_too_little_audio_to_hold_out_is_a_clear_error(project):
    only_train(project)
    write_vtt(project / "recordings" / "train.vtt", TRAIN_CUES[:1])
    with pytest.raises(VocabtuneError, match="cannot hold out"):
        build_dataset(config(project))
    assert not (project / "data").exists()


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 3.0])
def test_bad_fraction_is_refused_before_any_work(project, fraction):
    with pytest.raises(VocabtuneError, match="--validation-fraction"):
        build_dataset(config(project, validation_fraction=fraction))


def test_cli_build_prints_the_summary(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    assert prepare_data.main(["build"]) == 0
    out = capsys.readouterr().out
    assert "wrote data" in out and "validation" in out and "LoRA" in out
    assert (project / "data" / project.name / "dataset_dict.json").is_file()
    assert read_metadata(project / "data" / project.name)["commands"] == ["prepare_data.py build"]


def test_cli_build_takes_a_validation_fraction(project, capsys, monkeypatch):
    only_train(project)
    monkeypatch.chdir(project)
    assert prepare_data.main(["build", "--validation-fraction", "0.5"]) == 0
    meta = read_metadata(project / "data" / project.name)
    assert meta["validation"]["fraction"] == 0.5
    capsys.readouterr()
    with pytest.raises(SystemExit):
        prepare_data.main(["build", "--help"])
    assert "dev* (default: 0.1)" in " ".join(capsys.readouterr().out.split())


def test_cli_build_error_is_one_clear_message(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    write_vtt(project / "recordings" / "train.vtt", [(1.0, 32.0, "one very long cue")])
    assert prepare_data.main(["build"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "train.vtt" in err


# --- the shared corpus: summary must match its manifest -----------------------------------

@pytest.fixture(scope="module")
def lingo_build(llm_lingo, tmp_path_factory):
    root = tmp_path_factory.mktemp("lingo")
    (root / "recordings").mkdir()
    (root / "vocab").mkdir()
    for name in ("train.mp3", "train.vtt", "validation.mp3", "validation.vtt"):
        shutil.copy(llm_lingo / name, root / "recordings" / name)
    shutil.copy(llm_lingo / "terms.txt", root / "vocab" / "terms.txt")
    started = time.perf_counter()
    result = build_dataset(config(root))
    log.warning("llm-lingo build took %.2f s wall\n%s", time.perf_counter() - started, result.summary)
    return result, json.loads((llm_lingo / "manifest.json").read_text())


@pytest.mark.parametrize("split", ["train", "validation"])
def test_llm_lingo_term_counts_match_the_manifest(lingo_build, split):
    result, manifest = lingo_build
    expected = manifest["splits"][split]["term_counts"]
    assert result.stats[split].term_counts == expected
    assert read_metadata(result.out)["splits"][split]["term_counts"] == expected
    for term, n in expected.items():
        line = next(l for l in result.summary.splitlines() if l.startswith(term + "  "))
        assert line.split()[len(term.split()) + ("train", "validation").index(split)] == str(n)


def test_llm_lingo_rows_read_back_with_exact_audio(lingo_build):
    result, manifest = lingo_build
    ds = assert_audio_matches_times(result.out)
    for split in ("train", "validation"):
        assert set(ds[split]["source"]) == {manifest["splits"][split]["audio"]}
        assert result.stats[split].audio_s <= manifest["splits"][split]["duration_s"]
