"""The CTranslate2 engine on the tiny random Whisper: valid VTTs, the conversion cache
(reused, keyed on the weights, rebuilt when damaged), the vocabulary prompt on every
window, English-only models, adapters, and the fallback to transformers."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from vocabtune import ct2_engine
from vocabtune.captions import read_vtt, validate_cues
from vocabtune.config import SAMPLE_RATE, TranscribeConfig
from vocabtune.errors import VocabtuneError
from vocabtune.schema import Severity

pytest.importorskip("faster_whisper", reason="the CTranslate2 engine needs faster-whisper")


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    """Each test converts into its own cache, never the user's ~/.cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv(ct2_engine.CACHE_ENV, str(root))
    return root / "ct2"


@pytest.fixture(autouse=True)
def text_tokens_by_role(monkeypatch):
    """faster-whisper takes every id below ``<|endoftext|>`` for text, true of OpenAI's
    vocabulary (50,256 text tokens, then the specials) but not of the tiny test tokenizer,
    which has ``<|endoftext|>`` at id 0: every segment would decode to nothing and be
    dropped. Here it drops special and timestamp tokens by role instead, the rule
    transformers uses; real Whisper tokenizers need no such help."""
    from faster_whisper.tokenizer import Tokenizer

    def decode(self, tokens):
        special = {i for i, t in self.tokenizer.get_added_tokens_decoder().items() if t.special}
        return self.tokenizer.decode([t for t in tokens if t not in special and t < self.timestamp_begin])

    monkeypatch.setattr(Tokenizer, "decode", decode)


@pytest.fixture
def conversions(monkeypatch) -> list[Path]:
    """Every conversion the engine runs (the real one, counted)."""
    calls: list[Path] = []
    real = ct2_engine.export_ctranslate2

    def counting(model_dir, out, quantization, force=False):
        calls.append(Path(out))
        return real(model_dir, out, quantization, force=force)

    monkeypatch.setattr(ct2_engine, "export_ctranslate2", counting)
    return calls


@pytest.fixture
def recordings(tmp_path, data_dir) -> Path:
    folder = tmp_path / "recordings"
    folder.mkdir()
    shutil.copy(data_dir / "audio" / "clip.mp3", folder / "talk.mp3")
    return folder


def _errors(path: Path, audio: Path) -> list:
    from vocabtune.audio import decode_audio

    cues, problems = read_vtt(path)
    problems += validate_cues(cues, str(path), len(decode_audio(audio)) / SAMPLE_RATE)
    return [p for p in problems if p.severity == Severity.ERROR]


def _vocab(tmp_path: Path, terms: str = "vLLM\nPEFT\nMixtral 8x7B\n") -> Path:
    vocab = tmp_path / "vocab"
    vocab.mkdir(exist_ok=True)
    (vocab / "terms.txt").write_text(terms)
    return vocab


# ---------------------------------------------------------------- pure choices

CPU_TYPES = {"float32", "int16", "int8", "int8_float32"}           # an x86 CPU (CTranslate2 4.8)
PASCAL_TYPES = {"float32", "int8", "int8_float32"}                 # a GTX 1080: no fast float16
TURING_TYPES = PASCAL_TYPES | {"float16", "int8_float16"}          # a T4


def test_compute_type_and_device_choices():
    assert ct2_engine.resolve_compute_type("default", "cpu", CPU_TYPES) == "int8"
    assert ct2_engine.resolve_compute_type("default", "cpu", {"float32"}) == "float32"
    assert ct2_engine.resolve_compute_type("default", "cuda", TURING_TYPES) == "float16"
    assert ct2_engine.resolve_compute_type("default", "cuda", PASCAL_TYPES) == "int8_float32"
    assert ct2_engine.resolve_compute_type("default", "cuda", {"float32"}) == "float32"
    assert ct2_engine.resolve_compute_type("auto", "cpu", CPU_TYPES) == "auto"
    assert ct2_engine.resolve_compute_type("int8_float16", "cuda", TURING_TYPES) == "int8_float16"
    with pytest.raises(VocabtuneError, match="unknown compute type"):
        ct2_engine.resolve_compute_type("int4", "cpu", CPU_TYPES)
    with pytest.raises(VocabtuneError, match="float16 does not run on this GPU .*int8_float32"):
        ct2_engine.resolve_compute_type("float16", "cuda", PASCAL_TYPES)
    assert ct2_engine.storage_quantization("int8") == "int8"
    assert ct2_engine.storage_quantization("auto") == "float32"
    assert ct2_engine.resolve_device("cpu") == ("cpu", 0)
    assert ct2_engine.resolve_device("cuda:1") == ("cuda", 1)
    with pytest.raises(ct2_engine.EngineUnavailable, match="mps"):
        ct2_engine.resolve_device("mps")


def test_a_compute_type_the_cpu_cannot_run_is_one_line_before_any_conversion(
        recordings, tiny_whisper, conversions, capsys):
    """It was converted twice, then transcribed with transformers under a warning."""
    import prepare_data

    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper),
            "--device", "cpu", "--compute-type", "float16"]
    assert prepare_data.main(args) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--compute-type float16 does not run on the CPU" in errors[0], err
    assert "int8" in errors[0] and "Traceback" not in err
    assert conversions == [] and not list(recordings.glob("*.vtt"))


def test_prompt_text_keeps_the_terms_prompting_kept():
    assert ct2_engine.prompt_text(["a", "b", "a", " ", "c"], ["b"]) == "Glossary: a, c."


# ---------------------------------------------------------------- end to end

def test_ct2_engine_writes_a_valid_vtt_and_caches_the_conversion(recordings, tiny_whisper, cache,
                                                                 conversions, caplog):
    from vocabtune.transcribe import transcribe_recordings

    cfg = TranscribeConfig(recordings=recordings, model=str(tiny_whisper), device="cpu")
    assert cfg.engine == "ctranslate2"                          # the default
    with caplog.at_level(logging.WARNING):
        [vtt] = transcribe_recordings(cfg)
    assert "using transformers" not in caplog.text              # no silent fallback
    assert _errors(vtt, recordings / "talk.mp3") == []
    [converted] = conversions
    assert converted.parent == cache and converted.name.endswith("-int8")
    assert ct2_engine.is_complete(converted)
    before = (converted / "model.bin").stat().st_mtime_ns
    transcribe_recordings(TranscribeConfig(recordings=recordings, model=str(tiny_whisper),
                                           device="cpu", force=True))
    assert len(conversions) == 1                                 # second call: reused
    assert (converted / "model.bin").stat().st_mtime_ns == before
    assert [p.name for p in cache.iterdir()] == [converted.name]  # no temp folders left


def test_new_weights_or_compute_type_get_their_own_conversion(tiny_whisper, tmp_path, conversions):
    model = tmp_path / "model"
    shutil.copytree(tiny_whisper, model)
    first = ct2_engine.converted_model(str(model), "int8")
    assert ct2_engine.converted_model(str(model), "float32") != first
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes())         # re-trained / re-merged in place
    assert ct2_engine.converted_model(str(model), "int8") != first
    assert len(conversions) == 3


def test_stale_conversions_are_pruned_and_others_kept(tiny_whisper, tmp_path, cache, conversions):
    """A re-trained model's old conversions (every compute type) and those of deleted models
    go; another model's, and the same weights' other compute type, stay."""
    model, other, gone = tmp_path / "model", tmp_path / "other", tmp_path / "gone"
    for folder in (model, other, gone):
        shutil.copytree(tiny_whisper, folder)
    old_int8 = ct2_engine.converted_model(str(model), "int8")
    old_f32 = ct2_engine.converted_model(str(model), "float32")
    kept = ct2_engine.converted_model(str(other), "int8")
    deleted = ct2_engine.converted_model(str(gone), "int8")
    legacy = cache / "legacy-0123456789abcdef-int8"              # made before sources were kept
    legacy.mkdir()
    shutil.rmtree(gone)
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes())                     # re-trained in place
    new_int8 = ct2_engine.converted_model(str(model), "int8")
    assert sorted(p.name for p in cache.iterdir()) == sorted([new_int8.name, kept.name, legacy.name])
    assert not old_int8.exists() and not old_f32.exists() and not deleted.exists()
    new_f32 = ct2_engine.converted_model(str(model), "float32")   # same new weights: both stay
    assert new_int8.exists() and new_f32.exists() and len(conversions) == 6


@pytest.mark.parametrize("damage", ["marker", "truncate"])
def test_a_damaged_cache_is_rebuilt(tiny_whisper, conversions, damage):
    loaded = ct2_engine.load_ct2(str(tiny_whisper), device="cpu", language="en")
    path = loaded.path
    del loaded
    if damage == "marker":                            # conversion interrupted before the end
        (path / ct2_engine.MARKER).unlink()
    else:                                             # disk trouble after it was written
        with open(path / "model.bin", "r+b") as f:
            f.truncate(100)
    again = ct2_engine.load_ct2(str(tiny_whisper), device="cpu", language="en")
    assert again.path == path and len(conversions) == 2
    assert ct2_engine.is_complete(path)
    assert ct2_engine.transcribe_audio(again, np.zeros(SAMPLE_RATE, np.float32), _decoding()) is not None


def _decoding(**kw):
    from vocabtune.transcribe import Decoding

    return Decoding("en", fallback=False, **kw)


def test_prompt_vocab_prompts_every_window(tiny_whisper, tmp_path, monkeypatch):
    """The glossary goes before every 30 s window (as in the transformers engine), with the
    same token ids prompting.py computes with the transformers tokenizer."""
    from faster_whisper.transcribe import WhisperModel

    from vocabtune.modelio import load_processor
    from vocabtune.prompting import vocab_prompt_ids
    from vocabtune.transcribe import decoding_for

    cfg = TranscribeConfig(model=str(tiny_whisper), device="cpu", prompt_vocab=True,
                           vocab=_vocab(tmp_path), temperature_fallback=False)
    loaded = ct2_engine.load_ct2(cfg.model, device="cpu", language="en")
    decoding = decoding_for(loaded, cfg)
    want, _ = vocab_prompt_ids(load_processor(str(tiny_whisper)), ["vLLM", "PEFT", "Mixtral 8x7B"])
    assert list(decoding.prompt_ids) == want
    assert decoding.prompt_text == "Glossary: vLLM, PEFT, Mixtral 8x7B."
    prompts, real = [], WhisperModel.generate_with_fallback

    def spy(self, encoder_output, prompt, tokenizer, options):
        prompts.append(list(prompt))
        return real(self, encoder_output, prompt, tokenizer, options)

    monkeypatch.setattr(WhisperModel, "generate_with_fallback", spy)
    noise = np.random.default_rng(0).normal(0, 0.05, 70 * SAMPLE_RATE).astype(np.float32)
    ct2_engine.transcribe_audio(loaded, noise, decoding)
    assert len(prompts) >= 3                                     # >= 3 windows of 30 s
    assert all(p[: len(want)] == want for p in prompts)          # <|startofprev|> + glossary


def test_the_model_computes_long_recordings_features_window_by_window(tiny_whisper, monkeypatch):
    """faster-whisper's model gets the windowed extractor (bounded memory on long
    recordings), and what it decodes from are faster-whisper's own features."""
    from faster_whisper.feature_extractor import FeatureExtractor

    from vocabtune import log_mel
    from vocabtune.ct2_features import WindowedFeatureExtractor

    loaded = ct2_engine.load_ct2(str(tiny_whisper), device="cpu", language="en")
    assert isinstance(loaded.model.feature_extractor, WindowedFeatureExtractor)
    seen, real = [], log_mel.faster_whisper_log_mel
    monkeypatch.setattr(log_mel, "faster_whisper_log_mel",
                        lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    monkeypatch.setattr(log_mel, "LONG_AUDIO_S", 20.0)       # "long" from 20 s, for speed
    noise = np.random.default_rng(1).normal(0, 0.05, 25 * SAMPLE_RATE).astype(np.float32)
    ct2_engine.transcribe_audio(loaded, noise, _decoding())
    assert len(seen) == 1
    assert np.array_equal(seen[0], FeatureExtractor(**loaded.model.feat_kwargs)(noise))


def test_prompt_vocab_cli_on_the_ct2_engine(recordings, tiny_whisper, tmp_path, capsys):
    import prepare_data

    args = ["transcribe", "--recordings", str(recordings), "--model", str(tiny_whisper),
            "--device", "cpu", "--engine", "ctranslate2", "--prompt-vocab", "--vocab", str(_vocab(tmp_path))]
    assert prepare_data.main(args) == 0
    assert f"wrote {recordings / 'talk.vtt'}" in capsys.readouterr().out
    assert _errors(recordings / "talk.vtt", recordings / "talk.mp3") == []


def test_english_only_model(recordings, tiny_whisper_en):
    from vocabtune.transcribe import transcribe_recordings

    [vtt] = transcribe_recordings(TranscribeConfig(recordings=recordings, model=str(tiny_whisper_en),
                                                   device="cpu", engine="ctranslate2"))
    assert _errors(vtt, recordings / "talk.mp3") == []
    with pytest.raises(VocabtuneError, match="English-only"):
        ct2_engine.load_ct2(str(tiny_whisper_en), device="cpu", language="de")


def test_finetune_transcribe_with_an_adapter_merges_then_converts(recordings, tiny_whisper, tmp_path,
                                                                   cache, capsys):
    import finetune
    from tiny_adapter import make_adapter

    adapter = make_adapter(tiny_whisper, tmp_path / "adapter")
    audio = recordings / "talk.mp3"
    args = ["transcribe", "--model", str(adapter), "--device", "cpu", "--compute-type", "float32", str(audio)]
    assert finetune.main(args) == 0
    assert f"wrote {recordings / 'talk.finetuned.vtt'}" in capsys.readouterr().out
    # the random model's words may be none (" � �"): only the file's form is checked here
    errors = _errors(recordings / "talk.finetuned.vtt", audio)
    assert [p.message for p in errors if not p.message.startswith("no cue has both text")] == []
    [converted] = list(cache.iterdir())                          # merge scratch removed
    assert converted.name.startswith("adapter-") and converted.name.endswith("-float32")


@pytest.fixture
def one_torch_thread():
    """The tiny model on transformers decodes token by token: one thread is much faster."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_falls_back_to_transformers_when_conversion_fails(recordings, tiny_whisper, monkeypatch, caplog,
                                                          one_torch_thread):
    from vocabtune.transcribe import transcribe_recordings

    def broken(*a, **k):
        raise VocabtuneError("CTranslate2 conversion failed (simulated)")

    monkeypatch.setattr(ct2_engine, "export_ctranslate2", broken)
    with caplog.at_level(logging.WARNING, logger="vocabtune.transcribe"):
        [vtt] = transcribe_recordings(TranscribeConfig(recordings=recordings, model=str(tiny_whisper),
                                                       device="cpu", temperature_fallback=False))
    assert "CTranslate2 engine unavailable" in caplog.text and "simulated" in caplog.text
    assert _errors(vtt, recordings / "talk.mp3") == []


def test_bad_model_or_engine_is_a_clear_error(recordings, tmp_path):
    from vocabtune.transcribe import transcribe_recordings

    with pytest.raises(VocabtuneError, match="model not found"):
        transcribe_recordings(TranscribeConfig(recordings=recordings, model=str(tmp_path / "nope")))
    with pytest.raises(VocabtuneError, match="unknown engine"):
        transcribe_recordings(TranscribeConfig(recordings=recordings, engine="onnx"))


def test_one_ctranslate2_thread_per_usable_physical_core():
    import os

    from vocabtune.ct2_engine import cpu_threads

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 1 <= cpu_threads() <= usable


def test_speech_in_another_language_than_asked_is_named(caplog, tmp_path):
    """Told "en", Whisper translates German speech: the transcription says so, and how to
    fix it, when the model is sure enough; an unsure guess or the right language says nothing."""
    from vocabtune import transcribe as T

    assert T.other_language(("de", 0.97), "en") == ("de", 0.97)
    assert T.other_language(("de", 0.97), "German") is None
    assert T.other_language(("de", 0.5), "en") is None and T.other_language(None, "en") is None
    T.OtherLanguages().note(("de", 0.97), tmp_path / "a.mp3", T.Decoding(language="en"))
    assert "a.mp3 sounds like de (97% sure)" in caplog.text and "--language de" in caplog.text


def test_memos_in_another_language_are_warned_of_once_and_summed_up(caplog, tmp_path):
    """Sixty German memos transcribed as English: a warning at the first (stop the run
    there), one line at the end, not sixty."""
    from vocabtune import transcribe as T

    decoding, languages = T.Decoding(language="en"), T.OtherLanguages()
    for i in range(5):
        languages.note(("de", 0.95), tmp_path / f"Memo {i}.m4a", decoding)
    languages.note(("en", 0.99), tmp_path / "Memo 5.m4a", decoding)
    languages.summarise(decoding)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2 and messages[0].startswith("Memo 0.m4a sounds like de (95% sure)")
    assert messages[1] == ("5 recordings sound like de (Memo 0.m4a, Memo 1.m4a, Memo 2.m4a, …) but were "
                           "transcribed as en: pass --language de (with --force to redo them)")


def test_the_language_check_reuses_the_transcription_s_encoder_pass(tiny_whisper, recordings, monkeypatch):
    """One encoder pass for a short recording, not two: the language check ran the encoder
    over the first window again, about 40% of the time of a 5-25 s voice memo. (The tiny
    model's vocabulary is too small for CTranslate2's detect_language: nothing is heard.)"""
    from faster_whisper.transcribe import WhisperModel

    from vocabtune.transcribe import decoding_for, load_engine, transcribe_file, with_language

    cfg = with_language(TranscribeConfig(recordings=recordings, model=str(tiny_whisper), device="cpu"))
    loaded = load_engine(cfg)
    calls = []
    real = WhisperModel.encode
    monkeypatch.setattr(WhisperModel, "encode", lambda self, f: calls.append(1) or real(self, f))
    assert transcribe_file(loaded, recordings / "talk.mp3", decoding_for(loaded, cfg))
    assert len(calls) == 1 and "encode" not in vars(loaded.model)


def test_the_language_is_read_from_the_encoded_first_window():
    """What CTranslate2's detect_language ranks first, as faster-whisper reads it; a model
    that cannot detect (English-only, or a failure) hears nothing rather than failing."""
    from types import SimpleNamespace

    from vocabtune.ct2_engine import Ct2Model, _language_of

    def loaded(detect):
        return Ct2Model(SimpleNamespace(model=SimpleNamespace(detect_language=detect)), "m", Path("m"),
                        True, None, "int8", "en")

    assert _language_of(loaded(lambda out: [[("<|de|>", 0.97), ("<|en|>", 0.02)]]), "enc") == ("de", 0.97)

    def fails(out):
        raise RuntimeError("detect_language can only be called on multilingual models")

    assert _language_of(loaded(fails), "enc") is None


def test_windows_are_not_capped_below_faster_whisper_s_own_limit(tiny_whisper, tmp_path, monkeypatch):
    """No max_new_tokens, as in faster-whisper's own transcribe: a cap of 224 made CTranslate2
    end a 113-token window of llm-lingo validation differently (its last sentence lost: 21.1%
    WER against faster-whisper's 18.6%, same model and options; the tiny random model here
    writes too little to show it). With the 200-term glossary prompt too, it decodes
    without the 448-position error (PITFALLS #4)."""
    from faster_whisper.transcribe import WhisperModel

    from vocabtune.transcribe import decoding_for

    seen, real = [], WhisperModel.generate_with_fallback

    def spy(self, encoder_output, prompt, tokenizer, options):
        result = real(self, encoder_output, prompt, tokenizer, options)
        seen.append((options.max_new_tokens, len(prompt), len(result[0].sequences_ids[0])))
        return result

    monkeypatch.setattr(WhisperModel, "generate_with_fallback", spy)
    noise = np.random.default_rng(1).normal(0, 0.05, 40 * SAMPLE_RATE).astype(np.float32)
    terms = "\n".join(f"Term{i}x{i * 7}B" for i in range(200))
    for prompt in (False, True):
        cfg = TranscribeConfig(model=str(tiny_whisper), device="cpu", prompt_vocab=prompt,
                               vocab=_vocab(tmp_path, terms), temperature_fallback=False)
        loaded = ct2_engine.load_ct2(cfg.model, device="cpu", language="en")
        ct2_engine.transcribe_audio(loaded, noise, decoding_for(loaded, cfg))
    assert seen and all(cap is None for cap, _, _ in seen)
    assert max(p for _, p, _ in seen) > 200                 # the glossary was there
