"""Export a merged model to CTranslate2, the format faster-whisper loads.

Many people transcribe with faster-whisper; giving them the fine-tuned model in its format
(int8 for CPUs, float16 for GPUs) lets them keep their tools. The conversion is
ctranslate2's own converter; we only add a default place, an atomic write and checks.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from .errors import VocabtuneError
from .fsutil import check_writable, read_json_object, swap_in, temp_dir

log = logging.getLogger(__name__)
QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "float16", "float32")
# faster-whisper reads these beside model.bin: the tokenizer, and n_mels from the extractor.
FEATURES_FILE = "preprocessor_config.json"
COPIED_FILES = ("tokenizer.json", FEATURES_FILE)
PROCESSOR_FILE = "processor_config.json"       # transformers 5 keeps the extractor's settings here
MARKER = "vocabtune_export.json"


def default_export_dir(model_dir: Path, quantization: str) -> Path:
    return model_dir.parent / f"{model_dir.name}-ct2-{quantization}"


def export_ctranslate2(model_dir: Path, out: Path | None = None, quantization: str = "int8",
                       force: bool = False) -> Path:
    """Convert ``model_dir`` (a transformers Whisper folder) into ``out``; returns ``out``."""
    if quantization not in QUANTIZATIONS:
        raise VocabtuneError(f"unknown quantization {quantization!r}",
                             hint=f"choose one of {', '.join(QUANTIZATIONS)}")
    if not model_dir.exists():      # not "no config.json": there is no folder to look in
        raise VocabtuneError("model folder not found", file=model_dir,
                             hint="pass the folder `finetune.py merge` wrote: models/<name>-merged")
    if not (model_dir / "config.json").is_file():
        raise VocabtuneError("not a merged model folder (no config.json)", file=model_dir,
                             hint="run finetune.py merge first and export its output")
    model_type = read_json_object(model_dir / "config.json").get("model_type")
    if model_type != "whisper":
        raise VocabtuneError(f"not a Whisper model (model_type is {model_type!r})", file=model_dir,
                             hint="export a folder written by finetune.py merge")
    out = out or default_export_dir(model_dir, quantization)
    if _inside(model_dir, out):
        raise VocabtuneError("--out is the model's own folder or holds it; exporting there would "
                             "delete the model", file=out, hint="choose another --out")
    if out.exists() and not force and not (out / MARKER).is_file():
        raise VocabtuneError("output folder exists and was not written by export", file=out,
                             hint="choose another --out, or remove it (--force replaces it)")
    check_writable(out, "the export", "choose another --out")
    _check_copied_files(model_dir)
    _convert_atomically(model_dir, out, quantization)
    log.info("exported %s to %s (%s)", model_dir, out, quantization)
    return out


def _check_copied_files(model_dir: Path) -> None:
    """faster-whisper needs the tokenizer and the feature extractor's settings beside
    model.bin. A folder saved by transformers 5's ``processor.save_pretrained`` (a Whisper
    fine-tuned elsewhere) holds the latter only inside ``processor_config.json``
    (PITFALLS #10): accepted, and written out as ``preprocessor_config.json`` by
    ``_feature_extractor_file``."""
    missing = [f for f in COPIED_FILES if not (model_dir / f).is_file()]
    if FEATURES_FILE in missing and _feature_extractor_settings(model_dir):
        missing.remove(FEATURES_FILE)
    if missing:
        raise VocabtuneError(f"model folder lacks {', '.join(missing)}", file=model_dir,
                             hint="save the model's processor into it (WhisperProcessor.save_pretrained), "
                                  "or merge again with this version of vocabtune")


def _feature_extractor_settings(model_dir: Path) -> dict:
    section = read_json_object(model_dir / PROCESSOR_FILE).get("feature_extractor")
    return section if isinstance(section, dict) else {}


def _feature_extractor_file(model_dir: Path, out: Path) -> None:
    """``preprocessor_config.json`` in ``out`` from the model's ``processor_config.json``,
    where the model folder has no file of its own (``_check_copied_files``)."""
    if not (out / FEATURES_FILE).is_file():
        text = json.dumps(_feature_extractor_settings(model_dir), indent=2, sort_keys=True) + "\n"
        (out / FEATURES_FILE).write_text(text, encoding="utf-8")


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def _convert_atomically(model_dir: Path, out: Path, quantization: str) -> None:
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise VocabtuneError("export needs the ctranslate2 package, which is not installed",
                             hint="pip install -r requirements.txt") from None

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(out.parent, prefix=f".{out.name}.")
    try:
        present = [f for f in COPIED_FILES if (model_dir / f).is_file()]
        converter = TransformersConverter(str(model_dir), copy_files=present)
        converter.convert(str(tmp), quantization=quantization, force=True)
        _feature_extractor_file(model_dir, tmp)
        (tmp / MARKER).write_text(json.dumps({"source": model_dir.name, "quantization": quantization}))
        swap_in(tmp, out)
    except BaseException as err:    # Ctrl-C too: never leave the hidden folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, VocabtuneError) or not isinstance(err, Exception):
            raise
        raise VocabtuneError(f"CTranslate2 conversion failed ({err})", file=model_dir,
                             hint="check that the folder holds a complete Whisper model") from err

