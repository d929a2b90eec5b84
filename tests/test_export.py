"""Export to CTranslate2: faster-whisper loads it and decodes like the transformers model."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import finetune
from vocabtune.errors import VocabtuneError
from vocabtune.export import export_ctranslate2


def _greedy_tokens_transformers(model_dir: Path, features: np.ndarray, prompt: list[int]) -> list[int]:
    import torch
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration.from_pretrained(model_dir).eval()
    ids = torch.tensor([prompt])
    with torch.no_grad():
        enc = model.model.encoder(torch.from_numpy(features)).last_hidden_state
        for _ in range(12):
            logits = model(encoder_outputs=(enc,), decoder_input_ids=ids).logits[0, -1]
            ids = torch.cat([ids, logits.argmax().view(1, 1)], dim=1)
    return ids[0, len(prompt):].tolist()


def test_export_matches_transformers_greedy(tiny_whisper: Path, tmp_path: Path):
    import ctranslate2
    from transformers import WhisperProcessor

    out = export_ctranslate2(tiny_whisper, tmp_path / "ct2", quantization="float32")
    assert (out / "model.bin").is_file() and (out / "tokenizer.json").is_file()
    proc = WhisperProcessor.from_pretrained(tiny_whisper)
    audio = np.random.default_rng(0).normal(0, 0.1, 16000 * 3).astype(np.float32)
    feats = proc.feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_features
    prompt = proc.tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|en|>", "<|transcribe|>",
                                                   "<|notimestamps|>"])
    ct2 = ctranslate2.models.Whisper(str(out), device="cpu")
    result = ct2.generate(ctranslate2.StorageView.from_array(feats), [prompt], beam_size=1,
                          max_length=len(prompt) + 12, suppress_blank=False, suppress_tokens=[],
                          return_no_speech_prob=False, max_initial_timestamp_index=10_000)
    ct2_tokens = result[0].sequences_ids[0][:12]
    assert ct2_tokens == _greedy_tokens_transformers(tiny_whisper, feats, prompt)[:len(ct2_tokens)]


def test_faster_whisper_loads_the_export(tiny_whisper: Path, tmp_path: Path):
    from faster_whisper import WhisperModel

    out = export_ctranslate2(tiny_whisper, tmp_path / "ct2", quantization="int8")
    model = WhisperModel(str(out), device="cpu", compute_type="int8")
    audio = np.zeros(16000 * 2, dtype=np.float32)
    segments, info = model.transcribe(audio, language="en", beam_size=1, without_timestamps=True)
    list(segments)  # decodes end to end; a random model's text is meaningless
    assert info.language == "en"


def test_export_cli_and_errors(tiny_whisper: Path, tmp_path: Path, capsys):
    assert finetune.main(["export", "--model", str(tmp_path / "nope")]) == 1
    assert f"error: {tmp_path / 'nope'}: model folder not found" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep me")
    with pytest.raises(VocabtuneError, match="was not written by export"):
        export_ctranslate2(tiny_whisper, tmp_path / "taken")
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep me"
    assert finetune.main(["export", "--model", str(tiny_whisper), "--out", str(tmp_path / "e"),
                          "--quantization", "int8"]) == 0
    assert "wrote" in capsys.readouterr().out and (tmp_path / "e" / "model.bin").is_file()


def test_export_never_deletes_the_model_it_exports(tiny_whisper: Path, tmp_path: Path):
    models = tmp_path / "models"
    model = models / "mine-merged"
    shutil.copytree(tiny_whisper, model)
    (models / "important.txt").write_text("keep me")
    for out in (model, models):
        with pytest.raises(VocabtuneError, match="holds it"):
            export_ctranslate2(model, out, force=True)
    assert (model / "model.safetensors").is_file() and (models / "important.txt").read_text() == "keep me"


def test_re_export_replaces_the_old_one_and_leaves_no_hidden_folder(tiny_whisper: Path, tmp_path: Path):
    out = tmp_path / "e"
    export_ctranslate2(tiny_whisper, out, quantization="int8")
    export_ctranslate2(tiny_whisper, out, quantization="float32")
    assert json.loads((out / "vocabtune_export.json").read_text()) == {
        "source": tiny_whisper.name, "quantization": "float32"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_a_killed_exports_hidden_folder_is_removed_by_the_next_one(tiny_whisper: Path, tmp_path: Path,
                                                                   dead_pid: int):
    """Also what the CTranslate2 cache of transcribe is converted through."""
    killed = tmp_path / f".e.{dead_pid}-0a1b2c3d"
    killed.mkdir()
    (killed / "model.bin").write_bytes(b"half")
    export_ctranslate2(tiny_whisper, tmp_path / "e", quantization="int8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e"]


def test_interrupted_export_leaves_nothing(tiny_whisper: Path, tmp_path: Path, monkeypatch):
    from ctranslate2.converters import TransformersConverter

    def interrupted(self, output_dir, **kw):
        (Path(output_dir) / "model.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(TransformersConverter, "convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_ctranslate2(tiny_whisper, tmp_path / "e")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_that_is_not_whisper_is_named_so(tmp_path: Path):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(VocabtuneError, match="not a Whisper model \\(model_type is 'bert'\\)"):
        export_ctranslate2(tmp_path / "bert")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bert"]


def test_a_whisper_saved_by_transformers_5_exports_with_its_feature_extractor(tiny_whisper: Path,
                                                                            tmp_path: Path):
    """processor.save_pretrained in transformers 5 writes no preprocessor_config.json
    (PITFALLS #10); a Whisper fine-tuned elsewhere and saved so was refused ("merge again")."""
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    folder = tmp_path / "fine-tuned elsewhere"
    WhisperForConditionalGeneration.from_pretrained(tiny_whisper).save_pretrained(folder)
    WhisperProcessor.from_pretrained(tiny_whisper).save_pretrained(folder)
    assert not (folder / "preprocessor_config.json").exists()
    out = export_ctranslate2(folder, tmp_path / "ct2", quantization="int8")
    settings = json.loads((out / "preprocessor_config.json").read_text())
    assert settings["feature_size"] == 80 and settings["sampling_rate"] == 16000
    model = WhisperModel(str(out), device="cpu", compute_type="int8")
    assert model.feature_extractor.n_fft == settings["n_fft"]
