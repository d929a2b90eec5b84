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
from .fsutil import read_json_object, swap_in, temp_dir

log = logging.getLogger(__name__)
QUANTIZATIONS = ("int8", "int8_float16", "int8_float32", "float16", "float32")
# faster-whisper reads these beside model.bin: the tokenizer, and n_mels from the extractor.
COPIED_FILES = ("tokenizer.json", "preprocessor_config.json")
MARKER = "vocabtune_export.json"


def default_export_dir(model_dir: Path, quantization: str) -> Path:
    return model_dir.parent / f"{model_dir.name}-ct2-{quantization}"


def export_ctranslate2(model_dir: Path, out: Path | None = None, quantization: str = "int8",
                       force: bool = False) -> Path:
    """Convert ``model_dir`` (a transformers Whisper folder) into ``out``; returns ``out``."""
    if quantization not in QUANTIZATIONS:
        raise VocabtuneError(f"unknown quantization {quantization!r}",
                             hint=f"choose one of {', '.join(QUANTIZATIONS)}")
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
    missing = [f for f in COPIED_FILES if not (model_dir / f).is_file()]
    if missing:
        raise VocabtuneError(f"model folder lacks {', '.join(missing)}", file=model_dir,
                             hint="merge again with this version of vocabtune")
    _convert_atomically(model_dir, out, quantization)
    log.info("exported %s to %s (%s)", model_dir, out, quantization)
    return out


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
        converter = TransformersConverter(str(model_dir), copy_files=list(COPIED_FILES))
        converter.convert(str(tmp), quantization=quantization, force=True)
        (tmp / MARKER).write_text(json.dumps({"source": model_dir.name, "quantization": quantization}))
        swap_in(tmp, out)
    except BaseException as err:    # Ctrl-C too: never leave the hidden folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, VocabtuneError) or not isinstance(err, Exception):
            raise
        raise VocabtuneError(f"CTranslate2 conversion failed ({err})", file=model_dir,
                             hint="check that the folder holds a complete Whisper model") from err

