"""Merge a LoRA adapter into its base Whisper: one self-contained model folder that loads
and transcribes with plain transformers, no peft and no extra arguments.

The folder holds ``model.safetensors`` + ``config.json``, a ``generation_config.json``
with the language and task set (multilingual models; English-only ones take neither,
PITFALLS #1/#3), the full processor, the training metadata and ``report.json`` copied from
the adapter, and ``vocabtune_merge.json`` saying what was merged.

The processor is saved three ways on purpose: ``processor.save_pretrained`` in
transformers 5 writes only ``processor_config.json``, ``tokenizer.json`` and
``tokenizer_config.json`` (PITFALLS #10), so the feature extractor
(``preprocessor_config.json``) and the slow-tokenizer files (``vocab.json``,
``merges.txt``, ``normalizer.json`` when the base has one) are written explicitly; without
them ``WhisperFeatureExtractor.from_pretrained`` fails and ``decode(normalize=True)``
breaks (PITFALLS #9).

Nothing half-written: everything goes into a temp folder beside the target, which is
renamed into place at the end. An existing target is replaced only when it is an earlier
merge output (it has ``vocabtune_merge.json``); anything else is refused.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from . import __version__
from .config import DEFAULT_LANGUAGE, MergeConfig
from .errors import VocabtuneError
from .fsutil import atomic_write_text, check_writable, swap_in, temp_dir
from .modelio import (ADAPTER_CONFIG, MERGE_META, TRAIN_META, adapter_digest, is_adapter_dir, load_whisper,
                      recorded_language, set_language, whisper_of)

log = logging.getLogger(__name__)
REPORT_JSON = "report.json"             # written by evaluate beside the model
CARRIED_FILES = (TRAIN_META, REPORT_JSON, "report.md", "report.png")
# what evaluate writes beside a model: stale once the model is merged again, so replaced
EVALUATE_FILES = (REPORT_JSON, "report.md", "report.png")
RUN_SUBDIRS = ("best", "final", "last", "adapter")   # names that say nothing about the run


def merge_adapter(cfg: MergeConfig) -> Path:
    """Merge ``cfg.adapter`` into its base and save it; return the merged folder."""
    adapter = _check_adapter(Path(cfg.adapter))
    target = Path(cfg.out) if cfg.out else default_output(adapter)
    _check_target(target, adapter)
    language = cfg.language or trained_language(adapter)
    started = time.perf_counter()
    loaded = _load_for_merge(adapter, language)
    merged = loaded.model.merge_and_unload()   # returns the merged model (PITFALLS #14)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_dir(target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        _save_model(merged, loaded.processor, tmp)
        _carry_metadata(adapter, tmp)
        _write_merge_meta(tmp, adapter, loaded.base_model, language if loaded.multilingual else None)
        _refuse_to_drop_files(target, tmp)
        swap_in(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("merged %s into %s in %.1f s", adapter, target, time.perf_counter() - started)
    return target


def default_output(adapter: Path) -> Path:
    """``models/<run>-merged``: runs/my-voice/best and runs/my-voice/checkpoint-40 both
    come from the run ``my-voice``, so the run folder names the model."""
    adapter = adapter.resolve()
    name = adapter.name
    if name in RUN_SUBDIRS or name.startswith("checkpoint-"):
        name = adapter.parent.name
    return Path("models") / f"{name}-merged"


def trained_language(adapter: Path) -> str:
    """The language the adapter was trained on (its training metadata), else English."""
    return recorded_language(adapter) or DEFAULT_LANGUAGE


def _check_adapter(adapter: Path) -> Path:
    if not adapter.exists():
        raise VocabtuneError("adapter folder not found", file=adapter,
                             hint="pass a checkpoint or runs/<name>/best written by finetune.py train")
    if not is_adapter_dir(adapter):
        raise VocabtuneError(f"not a LoRA adapter folder (no {ADAPTER_CONFIG})", file=adapter,
                             hint="pass a checkpoint or runs/<name>/best written by finetune.py train")
    return adapter


def _check_target(target: Path, adapter: Path) -> None:
    """Refuse to overwrite anything that is not an earlier merge output, and to write into
    the adapter's folder: a merged model inside it would be uploaded whole by
    ``push --adapter`` and copied with every copy of the adapter."""
    if target.resolve() == adapter.resolve():
        raise VocabtuneError("the output folder is the adapter folder", file=target,
                             hint="choose another --out")
    if adapter.resolve() in target.resolve().parents:
        raise VocabtuneError(f"the output folder is inside the adapter folder {adapter}", file=target,
                             hint="choose an --out outside it, e.g. the default models/<name>-merged")
    check_writable(target, "the merged model", "choose another --out")
    if not target.exists():
        return
    if not target.is_dir() or (any(target.iterdir()) and not (target / MERGE_META).is_file()):
        raise VocabtuneError("output exists and is not an earlier merge output, so it is left alone",
                             file=target, hint="choose another --out or move it away")


def _refuse_to_drop_files(target: Path, new: Path) -> None:
    """An earlier merge output is replaced whole, so files a person added there (a card
    written by hand, notes) would go with it: refuse, naming them, before anything moves."""
    if not target.is_dir():
        return
    ours = {p.name for p in new.iterdir()} | set(EVALUATE_FILES)
    added = sorted(p.name for p in target.iterdir() if p.name not in ours)
    if added:
        raise VocabtuneError(f"the earlier merge output holds files merge did not write "
                             f"({', '.join(added[:5])}{', …' if len(added) > 5 else ''}); replacing "
                             "it would delete them", file=target,
                             hint="move them out of that folder, or choose another --out")


def _load_for_merge(adapter: Path, language: str):
    """Base + adapter in float32 on CPU: merging in full precision keeps the merged weights
    exact, and the merge itself is cheap enough not to need a GPU."""
    import torch

    loaded = load_whisper(str(adapter), device="cpu", dtype=torch.float32)
    set_language(loaded, language)
    return loaded


def _save_model(model, processor, out: Path) -> None:
    """Weights as safetensors, generation config, and the processor in every form
    transformers may look for (module docstring, PITFALLS #10)."""
    whisper_of(model).generation_config.forced_decoder_ids = None   # deprecated (PITFALLS #3)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    processor.feature_extractor.save_pretrained(out)
    processor.tokenizer.save_vocabulary(str(out))   # vocab.json, merges.txt, normalizer.json
    missing = [f for f in ("model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt")
               if not (out / f).is_file()]
    if missing:
        raise VocabtuneError(f"merged model is incomplete (missing {', '.join(missing)})", file=out,
                             hint="report this as a bug: transformers saved fewer files than expected")


def _carry_metadata(adapter: Path, out: Path) -> None:
    """Training metadata and evaluation reports travel with the model (the Hub card reads them)."""
    for name in CARRIED_FILES:
        if (adapter / name).is_file():
            shutil.copy2(adapter / name, out / name)


def _write_merge_meta(out: Path, adapter: Path, base: str, language: str | None) -> None:
    meta = {"base_model": base, "adapter": str(adapter.resolve()), "adapter_sha256": adapter_digest(adapter),
            "language": language,
            "merged_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "vocabtune_version": __version__}
    atomic_write_text(out / MERGE_META, json.dumps(meta, indent=2) + "\n")

