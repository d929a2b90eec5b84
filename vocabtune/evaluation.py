"""``finetune.py evaluate``: score a model and its base side by side on the validation split.

The model may be a LoRA adapter folder, a merged folder or a Hub id. Its base is
``--base-model``, else the adapter's base (``adapter_config.json``), else the base recorded
in a merged folder's ``vocabtune_merge.json`` / ``vocabtune_train.json``; a model with no
known base is scored alone. ``--compare`` adds each model with the vocabulary as a Whisper
prompt (prompt biasing, the competitor a fine-tune must beat, issue 4), and ``--general``
the WER on a second dataset of general speech (forgetting check) for each model.

Every model is loaded once (its plain and prompted decodes and the general set share the
load) and freed before the next. All input is checked before any decoding starts, and the
files are written only at the end, each atomically: bad input writes nothing.

Outputs, beside the model (a local folder) or in ``reports/<hub id with / as -->/``:
``report.json``, ``report.md`` and ``report.png`` (per-term recall chart); plus
``--json FILE``. The ``report.json`` layout (format 1)::

    {
      "format": 1,
      "dataset": "data/my-voice", "split": "validation", "num_chunks": 12, "language": "en",
      "vocabulary": {"source": "vocab", "terms": ["Mixtral 8x7B", ...]},
      "models": {                       # only the rows that were scored, in this order:
        "base":             EvalReport,  # base model
        "base_prompt":      EvalReport,  # base + vocabulary prompt        (--compare)
        "finetuned":        EvalReport,  # the model evaluated (absent if it is a base)
        "finetuned_prompt": EvalReport   # fine-tuned + vocabulary prompt  (--compare)
      },
      "base":      {"wer", "term_recall", "term_precision", "term_f1"} | null,   # headline
      "finetuned": {"wer", "term_recall", "term_precision", "term_f1"} | null,   # numbers
      "prompt": {"terms_in_prompt": 40, "dropped": []} | null,                 # --compare
      "general": {"dataset": "data/general", "num_chunks": 5,                  # --general
                  "models": {"base": {"wer", "seconds"}, "finetuned": {...}},
                  "changes": {"new":   [{"chunk", "ref", "finetuned"}, ...],  # wrong only after
                              "fixed": [{"chunk", "ref", "base"}, ...]}     # / only before the
                             | null,                                      # fine-tune
                  "wer_change": {"change", "low", "high", "level", "blocks",  # fine-tuned minus
                                 "block_words", "rounds"} | null} | null, # base, its interval
      "seconds": 81.2, "created": "2025-01-01T12:00:00+0000", "vocabtune_version": "0.1.0"
    }

where ``EvalReport`` is :class:`vocabtune.schema.EvalReport` as a dict: ``model``, ``wer``,
``term_recall``, ``term_precision``, ``term_f1``, ``term_wer``, ``other_wer``,
``num_chunks``, ``seconds`` and ``per_term``: a list of ``{"term", "occurrences", "hits",
"false_alarms", "recall"}``. Rates are fractions in [0, 1] (WER may exceed 1); ``null``
where nothing could be measured (no term in the references). The top-level ``base`` and
``finetuned`` repeat the headline numbers for readers such as the Hub model card.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from . import __version__
from . import report as R
from .config import EvalConfig
from .errors import VocabtuneError
from .fsutil import atomic_write_bytes, atomic_write_text, check_writable, read_json_object
from .modelio import (MERGE_META, TRAIN_META, LoadedModel, adapter_base, is_adapter_dir, load_whisper,
                      looks_local)
from .schema import EvalReport
from .scoring import score
from .wer_interval import ref_lengths, wer_change
from .word_changes import Changes, changes_between, word_errors

log = logging.getLogger(__name__)
REPORT_FORMAT = 1
REPORTS_ROOT = Path("reports")              # where reports of Hub models go
OUTPUT_NAMES = ("report.json", "report.md", "report.png")


@dataclass(frozen=True)
class Side:
    """One model to load: ``key`` is "base" or "finetuned"."""

    key: str
    model: str


@dataclass
class Clips:
    """Audio and reference texts of the chunks one model is decoded on."""

    dataset: str
    refs: list[str]
    arrays: list[np.ndarray]


@dataclass
class EvalResult:
    table: str                                   # what the CLI prints
    written: list[Path]
    reports: dict[str, EvalReport]               # keyed as in report.json "models"
    general: dict[str, EvalReport] = field(default_factory=dict)
    document: dict[str, Any] = field(default_factory=dict)   # the report.json content
    changes: Changes | None = None               # general-speech words broken / fixed


def evaluate(cfg: EvalConfig) -> EvalResult:
    """Score ``cfg.model`` (and its base) on the validation split; write the reports."""
    from .dataset import dataset_terms
    from .modelio import resolve_language

    started = time.perf_counter()
    cfg = replace(cfg, language=resolve_language(cfg.model, cfg.language))
    sides = model_plan(cfg)
    terms, vocab_source = dataset_terms(Path(cfg.vocab), Path(cfg.dataset))
    validation = validation_clips(Path(cfg.dataset))
    general = general_clips(Path(cfg.general_dataset)) if cfg.general_dataset else None
    reports: dict[str, EvalReport] = {}
    general_reports: dict[str, EvalReport] = {}
    general_hyps: dict[str, list[str]] = {}
    prompt_info: dict[str, Any] | None = None
    for side in sides:
        with loaded_model(side.model, cfg) as loaded:
            prompt_ids, prompt_info = _prompt(loaded, terms) if cfg.compare else (None, None)
            reports.update(score_side(loaded, side, validation, terms, cfg, prompt_ids))
            if general is not None:
                general_hyps[side.key], seconds = decode(loaded, side.model, general, cfg)
                general_reports[side.key] = score(side.model, general.refs, general_hyps[side.key], [],
                                                  seconds=seconds, language=cfg.language)
    changes = general_changes(general, general_hyps, cfg.language)
    document = report_document(cfg, reports, general_reports, vocab_source, terms, prompt_info,
                               time.perf_counter() - started, general, changes)
    written = write_outputs(cfg, document, reports, general_reports, changes)
    table = R.format_terminal(reports, general_reports, str(cfg.dataset), changes)
    return EvalResult(table, written, reports, general_reports, document, changes)


# -- what to score ---------------------------------------------------------------------------

def model_plan(cfg: EvalConfig) -> list[Side]:
    """The base (if known and different) then the model itself, both checked up front so a
    typo in either fails before minutes of decoding."""
    if not cfg.model:
        raise VocabtuneError("no model given", hint="pass --model runs/<name>/best, a merged folder or a Hub id")
    if cfg.batch_size < 1:
        raise VocabtuneError("--batch-size must be at least 1", hint="the default is 8")
    if cfg.json_path is not None and Path(cfg.json_path).is_dir():
        raise VocabtuneError("--json names a folder; it takes a file name", file=cfg.json_path,
                             hint="e.g. --json results.json")
    check_writable(output_dir(cfg.model), "the report", "evaluate a copy of the model in a folder you can "
                   "write to")
    if cfg.json_path is not None:
        check_writable(Path(cfg.json_path).parent, "the --json report", "choose another --json")
    check_model(cfg.model)
    base = cfg.base_model or base_of(cfg.model)
    if base is None:            # a Whisper fine-tuned elsewhere would otherwise pass as "base"
        log.info("%s records no base model (it is not an adapter or a merge by vocabtune): scored "
                 "alone, in the row named base; --base-model NAME scores its base beside it", cfg.model)
    if base is None or same_model(base, cfg.model):
        return [Side("base", cfg.model)]
    check_model(base)
    return [Side("base", base), Side("finetuned", cfg.model)]


def base_of(model: str) -> str | None:
    """The base model behind an adapter or a merged folder, if recorded."""
    path = Path(model)
    if is_adapter_dir(path):
        return adapter_base(path)
    if not path.is_dir():
        return None
    for meta_file in (MERGE_META, TRAIN_META):
        meta = read_json_object(path / meta_file)
        for section in (meta, meta.get("config") or {}):
            if isinstance(section, dict) and isinstance(section.get("base_model"), str):
                return section["base_model"]
    return None


def same_model(a: str, b: str) -> bool:
    pa, pb = Path(a), Path(b)
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def check_model(name: str) -> None:
    """A clear error for a model path that does not exist or is not Whisper, without
    loading weights. Hub ids are checked when loaded (no network here to ask)."""
    path = Path(name)
    if not path.exists():
        first = Path(*path.parts[:1]) if path.parts else path
        if looks_local(name) or first.is_dir():
            raise VocabtuneError("model not found", file=name,
                                 hint="give an adapter folder, a merged model folder or a Hub id")
        return
    if is_adapter_dir(path):
        check_model(adapter_base(path))
        return
    config = read_json_object(path / "config.json") if path.is_dir() else {}
    if not config:
        raise VocabtuneError("not a model folder (no config.json or adapter_config.json)", file=name,
                             hint="point at a folder written by finetune.py train or merge")
    if config.get("model_type") != "whisper":
        raise VocabtuneError(f"not a Whisper model (model_type is {config.get('model_type')!r})",
                             file=name, hint="evaluate a Whisper model or adapter")


# -- audio -----------------------------------------------------------------------------------

def validation_clips(dataset: Path) -> Clips:
    from .dataset import load_dataset_dir

    return _clips(dataset, [load_dataset_dir(dataset)["validation"]])


def general_clips(dataset: Path) -> Clips:
    """Every split of the general-speech dataset: no model was trained on it, so all of it
    measures forgetting (more audio, steadier WER)."""
    from .dataset import load_dataset_dir

    loaded = load_dataset_dir(dataset)
    return _clips(dataset, [loaded[name] for name in loaded])


def _clips(dataset: Path, splits: Sequence[Any]) -> Clips:
    from .dataset import example_audio

    refs, arrays = [], []
    for split in splits:
        for row in split:
            refs.append(row["text"])
            arrays.append(example_audio(row))
    return Clips(str(dataset), refs, arrays)


# -- decoding and scoring --------------------------------------------------------------------

@contextlib.contextmanager
def loaded_model(name: str, cfg: EvalConfig) -> Iterator[LoadedModel]:
    """Load one model; free it (and the GPU cache) before the next is loaded."""
    log.info("loading %s", name)
    loaded = load_whisper(name, device=cfg.device, language=cfg.language)
    try:
        yield loaded
    finally:
        loaded.model = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _prompt(loaded: LoadedModel, terms: Sequence[str]) -> tuple[list[int] | None, dict[str, Any] | None]:
    from .prompting import log_dropped, vocab_prompt_ids

    if not terms:
        return None, None
    ids, dropped = vocab_prompt_ids(loaded.processor, terms)
    log_dropped(dropped, len(terms) - len(dropped))
    return ids, {"terms_in_prompt": len(terms) - len(dropped), "dropped": list(dropped)}


def score_side(loaded: LoadedModel, side: Side, clips: Clips, terms: Sequence[str],
               cfg: EvalConfig, prompt_ids: list[int] | None) -> dict[str, EvalReport]:
    """The model's row, and its "+ prompt" row when a prompt is given."""
    rows = {side.key: decode_and_score(loaded, side.model, clips, terms, cfg)}
    if prompt_ids:
        rows[f"{side.key}_prompt"] = decode_and_score(loaded, side.model, clips, terms, cfg, prompt_ids)
    return rows


def decode_and_score(loaded: LoadedModel, name: str, clips: Clips, terms: Sequence[str],
                     cfg: EvalConfig, prompt_ids: list[int] | None = None) -> EvalReport:
    hyps, seconds = decode(loaded, name, clips, cfg, prompt_ids)
    return score(name, clips.refs, hyps, terms, seconds=seconds, language=cfg.language)


def decode(loaded: LoadedModel, name: str, clips: Clips, cfg: EvalConfig,
           prompt_ids: list[int] | None = None) -> tuple[list[str], float]:
    """The model's text for every clip, and the seconds it took."""
    from . import transcribe      # module attribute lookup: tests swap decode_batch

    log.info("decoding %d chunks of %s with %s%s", len(clips.arrays), clips.dataset, name,
             " + vocabulary prompt" if prompt_ids else "")
    started = time.perf_counter()
    hyps = transcribe.decode_batch(loaded, clips.arrays, language=cfg.language,
                                   prompt_ids=prompt_ids, batch_size=cfg.batch_size)
    seconds = time.perf_counter() - started
    for ref, hyp in zip(clips.refs, hyps):
        log.debug("REF: %s\nHYP: %s", ref, hyp)
    return hyps, seconds


def general_changes(general: Clips | None, hyps: dict[str, list[str]],
                    language: str = "en") -> Changes | None:
    """The general-speech words the fine-tune broke and fixed, and how sure the WER change
    is, when both models were decoded."""
    if general is None or not {"base", "finetuned"} <= set(hyps):
        return None
    base, tuned = (word_errors(general.refs, hyps[key], language) for key in ("base", "finetuned"))
    changes = changes_between(base, tuned)
    lengths = ref_lengths(general.refs, language)
    if not sum(lengths):
        return changes          # no reference words: a WER change has nothing to resample
    return replace(changes, wer_change=wer_change(lengths, base, tuned))


# -- outputs ---------------------------------------------------------------------------------

def report_document(cfg: EvalConfig, reports: dict[str, EvalReport], general: dict[str, EvalReport],
                    vocab_source: str, terms: Sequence[str], prompt: dict[str, Any] | None,
                    seconds: float, general_clips_: Clips | None,
                    changes: Changes | None = None) -> dict[str, Any]:
    """The report.json content (layout in the module docstring)."""
    main = reports[R.main_key(reports)]
    return {
        "format": REPORT_FORMAT, "dataset": str(cfg.dataset), "split": "validation",
        "num_chunks": main.num_chunks, "language": cfg.language,
        "vocabulary": {"source": vocab_source, "terms": list(terms)},
        "models": {k: R.report_dict(reports[k]) for k in R.ordered(reports)},
        "base": R.headline(reports.get("base")), "finetuned": R.headline(reports.get("finetuned")),
        "prompt": prompt,
        "general": None if general_clips_ is None else {
            "dataset": general_clips_.dataset, "num_chunks": len(general_clips_.refs),
            "models": {k: {"wer": r.wer, "seconds": round(r.seconds, 2)} for k, r in general.items()},
            "changes": R.changes_dict(changes), "wer_change": R.wer_change_dict(changes)},
        "seconds": round(seconds, 2), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "vocabtune_version": __version__,
    }


def output_dir(model: str) -> Path:
    """Beside the model for a local folder; ``reports/<sanitised hub id>/`` otherwise."""
    path = Path(model)
    if path.is_dir():
        return path
    return REPORTS_ROOT / re.sub(r"[^\w.-]+", "--", model.strip("/"))


def _note_replaced_report(path: Path, dataset: str) -> None:
    """One report lives beside a model, and ``push`` writes the model card from it: say so
    when it is replaced by one measured on another dataset."""
    try:
        earlier = read_json_object(path).get("dataset") if path.is_file() else None
    except VocabtuneError:
        return                  # not a report we can read: it is replaced all the same
    if earlier and earlier != dataset:
        log.warning("replacing %s, measured on %s, with this one on %s (push's model card reads "
                    "this file; --json keeps a copy elsewhere)", path, earlier, dataset)


def write_outputs(cfg: EvalConfig, document: dict[str, Any], reports: dict[str, EvalReport],
                  general: dict[str, EvalReport], changes: Changes | None = None) -> list[Path]:
    """Render everything first, then write each file atomically."""
    out = output_dir(cfg.model)
    as_json = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    title = f"Term recall per term on {Path(cfg.dataset).name} (validation split)"   # pushed: no path
    png = R.term_recall_png(reports, title)
    markdown = R.format_markdown(reports, general, str(cfg.dataset), OUTPUT_NAMES[2] if png else None,
                                 changes, cfg.language)
    out.mkdir(parents=True, exist_ok=True)
    _note_replaced_report(out / OUTPUT_NAMES[0], str(cfg.dataset))
    written = [atomic_write_text(out / OUTPUT_NAMES[0], as_json),
               atomic_write_text(out / OUTPUT_NAMES[1], markdown)]
    if png:
        written.append(atomic_write_bytes(out / OUTPUT_NAMES[2], png))
    elif (out / OUTPUT_NAMES[2]).exists():
        (out / OUTPUT_NAMES[2]).unlink()        # an earlier run's chart would belong to no report
    if cfg.json_path:
        Path(cfg.json_path).parent.mkdir(parents=True, exist_ok=True)
        written.append(atomic_write_text(Path(cfg.json_path), as_json))
    return written
