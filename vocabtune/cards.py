"""Dataset card and model card text (README.md with YAML metadata) — pure functions.

The cards are what a person (and the Hub) sees of a pushed repo, so they state only what was
measured or recorded: a number that is missing says "not measured", never a guess. The YAML
front matter is produced by huggingface_hub's own ``DatasetCardData``/``ModelCardData`` (so
``model-index`` has the shape the Hub parses), the prose here.

Inputs are plain dataclasses built from dicts (``*_from_dict``), so every card is unit-tested
without files, models or a Hub. ``vocabtune.hub`` reads the JSON files and calls these.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from huggingface_hub import DatasetCardData, EvalResult, ModelCardData

from . import __version__
from .report import md_code, md_text, signed_points
from .scoring import normaliser_name

TASK = "automatic-speech-recognition"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")   # "owner/name"; a local path is not one
SECONDS_KEYS = ("audio_s", "seconds", "duration_s", "duration")
CHUNK_KEYS = ("chunks", "num_chunks", "num_rows", "rows")


@dataclass(frozen=True)
class SplitFacts:
    name: str
    chunks: int
    seconds: float                                   # s of audio in the split
    term_counts: dict[str, int] = field(default_factory=dict)   # empty when not recorded


@dataclass(frozen=True)
class DatasetFacts:
    repo_id: str
    splits: tuple[SplitFacts, ...]
    terms: tuple[str, ...] = ()                      # empty when not recorded
    language: str = "en"
    commands: tuple[str, ...] = ()                   # how it was built, if recorded
    vocabtune_version: str = __version__
    data_files: dict[str, str] = field(default_factory=dict)   # split -> path glob in the repo
    columns: tuple[str, ...] = ("audio", "text", "start", "end", "source")


@dataclass(frozen=True)
class Metrics:
    wer: float | None = None                         # fraction: 0.12 is 12 % WER
    term_recall: float | None = None                 # fraction of term occurrences spelt right


@dataclass(frozen=True)
class GeneralCheck:
    """``evaluate --general``: WER on general speech before and after the fine-tune, and the
    95% interval of the change when it was measured (fractions)."""

    dataset: str | None = None          # the folder's name only (the card may go public)
    base_wer: float | None = None
    tuned_wer: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ModelFacts:
    repo_id: str
    base_model: str | None = None
    dataset: str | None = None                       # Hub id or local folder it was trained on
    language: str = "en"
    lora: dict[str, Any] = field(default_factory=dict)   # r, alpha, dropout, target_modules
    epochs: float | str | None = None     # "0.4 (of 1 asked)" for a run stopped short
    replay: str | None = None                        # general speech mixed into training
    speed_perturb: str | None = None                 # speed-perturbed copies trained on
    context_weight: float | None = None              # loss weight of words around the terms
    train_seconds: float | None = None
    resumed: bool = False        # train_seconds then covers the resumed part only
    base: Metrics | None = None
    finetuned: Metrics | None = None
    eval_split: str = "validation"
    eval_dataset: str | None = None     # the folder evaluate measured on (report.json), by name
    adapter_repo: str | None = None
    general: GeneralCheck | None = None              # forgetting check, when evaluated
    vocabtune_version: str = __version__
    ct2_folder: str | None = None                    # "ctranslate2-int8" when pushed with it
    base_model_is_local: bool = False                # a folder on disk that looks like "a/b"
    dataset_is_local: bool = False

    @property
    def base_model_id(self) -> str | None:
        return None if self.base_model_is_local else hub_id_or_none(self.base_model)

    @property
    def dataset_id(self) -> str | None:
        return None if self.dataset_is_local else hub_id_or_none(self.dataset)


# -- reading recorded metadata (dicts from JSON files) ------------------------------------------

def _first(d: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((d[k] for k in keys if d.get(k) is not None), None)


def split_from_dict(name: str, d: Mapping[str, Any]) -> SplitFacts | None:
    """One split of ``vocabtune.json`` (``summary.SplitStats.as_json`` shape, or close)."""
    chunks = _first(d, CHUNK_KEYS)
    seconds = _first(d, SECONDS_KEYS)
    if seconds is None and d.get("minutes") is not None:
        seconds = float(d["minutes"]) * 60
    if chunks is None or seconds is None:
        return None
    counts = d.get("term_counts") or {}
    return SplitFacts(name, int(chunks), float(seconds),
                      {str(k): int(v) for k, v in counts.items()})


def terms_from_dict(meta: Mapping[str, Any]) -> tuple[str, ...]:
    """The vocabulary recorded at build time: a list of strings (or of ``{"text": ...}``),
    else the keys of the per-split term counts."""
    raw = _first(meta, ("terms", "vocab", "vocabulary")) or []
    terms = [t["text"] if isinstance(t, Mapping) else str(t) for t in raw]
    if not terms:
        for split in (meta.get("splits") or {}).values():
            terms.extend(t for t in (split.get("term_counts") or {}) if t not in terms)
    return tuple(terms)


def metrics_from_dict(d: Mapping[str, Any] | None) -> Metrics | None:
    if not isinstance(d, Mapping):
        return None
    m = Metrics(_num(d.get("wer")), _num(_first(d, ("term_recall", "recall"))))
    return m if (m.wer is not None or m.term_recall is not None) else None


def report_metrics(report: Mapping[str, Any]) -> tuple[Metrics | None, Metrics | None]:
    """(base, fine-tuned) from an evaluation ``report.json`` (``vocabtune.evaluation`` format 1):
    the headline ``base``/``finetuned`` dicts, else the full ``models`` entries; rates are
    fractions (``wer``, ``term_recall``)."""
    models = report.get("models") if isinstance(report.get("models"), Mapping) else {}
    base = metrics_from_dict(report.get("base")) or metrics_from_dict(models.get("base"))
    tuned_keys = ("finetuned", "fine_tuned", "fine-tuned", "model")
    tuned = metrics_from_dict(_first(report, tuned_keys)) or metrics_from_dict(
        _first(models, tuned_keys))
    return base, tuned


def general_check(report: Mapping[str, Any]) -> GeneralCheck | None:
    """The forgetting check of a ``report.json`` (its ``general`` entry), if it has one."""
    general = report.get("general")
    if not isinstance(general, Mapping) or not isinstance(general.get("models"), Mapping):
        return None
    models = general["models"]
    base, tuned = (metrics_from_dict(models.get(k)) for k in ("base", "finetuned"))
    if tuned is None or tuned.wer is None:
        return None
    change = general.get("wer_change") if isinstance(general.get("wer_change"), Mapping) else {}
    name = Path(str(general["dataset"])).name if general.get("dataset") else None
    return GeneralCheck(name, base.wer if base else None, tuned.wer, _num(change.get("low")),
                        _num(change.get("high")))


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# -- formatting helpers ---------------------------------------------------------------------------

def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def percent(value: float | None) -> str:
    return "not measured" if value is None else f"{value * 100:.1f} %"


def hub_id_or_none(name: str | None) -> str | None:
    """Only real Hub ids go into YAML links (``base_model``, ``datasets``): the Hub rejects a
    local path there, and a path says nothing to a reader anyway."""
    return name if name and HUB_ID.match(name) and not name.startswith((".", "/")) else None


def size_category(rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if rows < limit:
            return label
    return "100K<n<1M"


# -- dataset card ---------------------------------------------------------------------------------

def dataset_card(facts: DatasetFacts) -> str:
    """README.md of a pushed dataset: YAML (configs so ``load_dataset(repo)`` finds the
    splits, task, language, licence) then what it is, splits, vocabulary, provenance."""
    name = facts.repo_id.split("/")[-1]
    meta = DatasetCardData(
        language=facts.language, license="other", task_categories=[TASK],
        pretty_name=name, size_categories=size_category(sum(s.chunks for s in facts.splits)),
        tags=["vocabtune", "whisper", "custom-vocabulary", "personal-voice"],
        configs=[{"config_name": "default", "data_files": [
            {"split": split, "path": glob} for split, glob in facts.data_files.items()]}])
    parts = [f"---\n{meta.to_yaml()}\n---", f"# {name}", _dataset_intro(facts),
             _splits_section(facts), _vocab_section(facts), _dataset_provenance(facts)]
    return "\n\n".join(parts) + "\n"


def _dataset_intro(facts: DatasetFacts) -> str:
    return (
        "Recordings of one person reading the vocabulary of their field, cut into chunks of "
        "at most 30 s along hand-corrected captions, for fine-tuning Whisper to spell these "
        f"terms right. Built with vocabtune {facts.vocabtune_version}.\n\n"
        f"Columns: {_columns(facts.columns)}.\n\n"
        "```python\nfrom datasets import load_dataset\n"
        f'ds = load_dataset("{facts.repo_id}")\n```\n\n'
        "**Licence and consent.** This is the uploader's own voice. No licence is granted "
        "unless the owner states one here; it is private unless the owner chose otherwise.")


COLUMN_NOTES = {"audio": "16 kHz mono WAV", "text": "the corrected transcript of the chunk",
                "start": "s, in the source recording", "end": "s, in the source recording",
                "source": "recording file name",
                "cues": "the caption cues inside the chunk, times relative to its start"}


def _columns(columns: Sequence[str]) -> str:
    return ", ".join(f"`{c}` ({COLUMN_NOTES[c]})" if c in COLUMN_NOTES else f"`{c}`"
                     for c in columns)


def _splits_section(facts: DatasetFacts) -> str:
    rows = ["| split | chunks | minutes of audio |", "|---|---:|---:|"]
    rows += [f"| {s.name} | {s.chunks} | {minutes(s.seconds)} |" for s in facts.splits]
    total_s = sum(s.seconds for s in facts.splits)
    rows.append(f"| **total** | {sum(s.chunks for s in facts.splits)} | {minutes(total_s)} |")
    return "## Splits\n\n" + "\n".join(rows)


def _vocab_section(facts: DatasetFacts) -> str:
    if not facts.terms:
        return "## Vocabulary\n\nThe vocabulary was not recorded with this dataset."
    counted = [s for s in facts.splits if s.term_counts]
    if not counted:
        return f"## Vocabulary\n\n{_plural(len(facts.terms), 'term')}: " + ", ".join(
            md_code(t) for t in facts.terms)
    head = "| term | " + " | ".join(s.name for s in counted) + " |"
    rows = [head, "|---|" + "---:|" * len(counted)]
    rows += [f"| {md_code(t, in_table=True)} | "
             + " | ".join(str(s.term_counts.get(t, 0)) for s in counted) + " |" for t in facts.terms]
    return (f"## Vocabulary\n\n{_plural(len(facts.terms), 'term')}, with how many chunks of "
            "each split contain them:\n\n" + "\n".join(rows))


def _dataset_provenance(facts: DatasetFacts) -> str:
    """The whole flow, with the build command as recorded (flags and all) when it was."""
    recorded = tuple(f"python {c}" if c.startswith(("prepare_data.py", "finetune.py")) else c
                     for c in facts.commands)
    commands = ("python prepare_data.py transcribe   # base Whisper -> recordings/*.vtt",
                "# correct the .vtt files by hand",
                "python prepare_data.py check",
                *(recorded or ("python prepare_data.py build",)),
                f"python prepare_data.py push --repo {facts.repo_id}")
    return ("## How it was built\n\n"
            f"With vocabtune {facts.vocabtune_version}:\n\n```bash\n" + "\n".join(commands)
            + "\n```")


# -- model card -----------------------------------------------------------------------------------

def model_card(facts: ModelFacts) -> str:
    """README.md of a pushed model: YAML with ``model-index`` holding the measured WER and
    term recall of the fine-tuned model (left out when not measured), then the results
    before/after, training settings and how to use it."""
    name = facts.repo_id.split("/")[-1]
    results = _eval_results(facts)
    meta = ModelCardData(
        base_model=facts.base_model_id, datasets=[facts.dataset_id] if facts.dataset_id else None,
        language=facts.language, library_name="transformers", pipeline_tag=TASK,
        tags=["whisper", "lora", "peft", "vocabtune", "custom-vocabulary"],
        model_name=name if results else None, eval_results=results or None)
    parts = [f"---\n{meta.to_yaml()}\n---", f"# {name}", _model_intro(facts),
             _results_section(facts), _training_section(facts), _usage_section(facts)]
    return "\n\n".join(parts) + "\n"


def _eval_results(facts: ModelFacts) -> list[EvalResult]:
    """model-index entries: only numbers that were measured, as percentages."""
    tuned = facts.finetuned
    if tuned is None:
        return []
    dataset = _measured_on(facts) or "personal recordings"
    trained_on = dataset == facts.dataset
    common = dict(task_type=TASK, task_name="Automatic Speech Recognition",
                  dataset_type=(facts.dataset_id if trained_on else None) or "audiofolder",
                  dataset_name=dataset.rstrip("/").split("/")[-1], dataset_split=facts.eval_split)
    results = []
    if tuned.wer is not None:
        results.append(EvalResult(metric_type="wer", metric_name="WER (%)",
                                  metric_value=round(tuned.wer * 100, 2), **common))
    if tuned.term_recall is not None:
        results.append(EvalResult(metric_type="term_recall", metric_name="Term recall (%)",
                                  metric_value=round(tuned.term_recall * 100, 2), **common))
    return results


def _model_intro(facts: ModelFacts) -> str:
    base = facts.base_model or "a Whisper model (not recorded)"
    dataset = f"`{facts.dataset}`" if facts.dataset else "not recorded"
    return (f"`{base}` fine-tuned with LoRA on one person's recordings of their own "
            "vocabulary, then merged into a plain Whisper model (safetensors + processor), "
            f"so it loads without peft. Dataset: {dataset}. Built with vocabtune "
            f"{facts.vocabtune_version}.\n\nIt was trained on one speaker: expect its gains on "
            "that speaker's voice and vocabulary, not in general.")


def _results_section(facts: ModelFacts) -> str:
    base, tuned = facts.base or Metrics(), facts.finetuned or Metrics()
    rows = ["| metric | base model | fine-tuned |", "|---|---:|---:|",
            f"| WER (lower is better) | {percent(base.wer)} | {percent(tuned.wer)} |",
            f"| vocabulary term recall (higher is better) | {percent(base.term_recall)} | "
            f"{percent(tuned.term_recall)} |"]
    general = facts.general
    if general is not None:
        rows.append(f"| WER on general speech{f' (`{general.dataset}`)' if general.dataset else ''}, "
                    f"the forgetting check | {percent(general.base_wer)} | {percent(general.tuned_wer)} |")
    measured_on = _measured_on(facts)
    of = f" of `{measured_on.rstrip('/').split('/')[-1]}`" if measured_on else ""
    return (f"## Results on the `{facts.eval_split}` split{of}\n\n" + "\n".join(rows) + "\n\n"
            f"WER on text normalised with {normaliser_name(facts.language)}. Term recall: share of "
            "the vocabulary terms in the reference that the transcript spells exactly."
            + _general_note(general))


def _measured_on(facts: ModelFacts) -> str | None:
    """The dataset the results were measured on: the one evaluate recorded, which need not be
    the one trained on (a held-out set); the training dataset for reports that did not say."""
    return facts.eval_dataset or facts.dataset


def _general_note(general: GeneralCheck | None) -> str:
    """The interval of the general-speech change, so a reader does not over-read a few words."""
    if general is None or None in (general.base_wer, general.low, general.high):
        return ""
    change = general.tuned_wer - general.base_wer
    return (f" The change on general speech ({signed_points(change)} points) has a 95% interval of "
            f"{signed_points(general.low)} to {signed_points(general.high)} points (paired bootstrap).")


def _plain(name: str | None) -> str | None:
    return None if name is None else md_text(name)


def _training_section(facts: ModelFacts) -> str:
    lora = facts.lora
    targets = lora.get("target_modules")
    # names as typed (a folder may be "my_voice|v2"), escaped; the other values are vocabtune's
    rows = [("base model", _plain(facts.base_model)), ("dataset", _plain(facts.dataset)),
            ("LoRA rank r", lora.get("r")), ("LoRA alpha", lora.get("alpha")),
            ("LoRA dropout", lora.get("dropout")),
            ("target modules", ", ".join(targets) if targets else None),
            ("epochs", facts.epochs),
            ("general speech replayed", facts.replay),
            ("speed perturbation", facts.speed_perturb),
            ("loss weight of the words around the terms", facts.context_weight),
            ("training time", _duration(facts.train_seconds) if not facts.resumed or facts.train_seconds is None
             else f"{_duration(facts.train_seconds)} after resuming (the time before the interruption "
                  "was not recorded)"),
            ("adapter", facts.adapter_repo)]
    table = ["| setting | value |", "|---|---|"]
    table += [f"| {k} | {'not recorded' if v is None else v} |" for k, v in rows
              if not (k == "adapter" and v is None)]
    return "## Training\n\n" + "\n".join(table)


def _usage_section(facts: ModelFacts) -> str:
    return ("## Use\n\n```python\nfrom transformers import pipeline\n"
            f'asr = pipeline("automatic-speech-recognition", model="{facts.repo_id}")\n'
            '# return_timestamps=True: Whisper decodes audio over 30 s window by window, with timestamps\n'
            'print(asr("recording.mp3", return_timestamps=True)["text"])\n```\n\n'
            "Reading a file needs ffmpeg on the PATH; without it, pass 16 kHz mono samples: "
            '`asr({"raw": samples, "sampling_rate": 16000}, return_timestamps=True)`.\n\n'
            + (f"With faster-whisper (CTranslate2): download this repo's `{facts.ct2_folder}/` folder "
               "and load it with `faster_whisper.WhisperModel(FOLDER)`."
               if facts.ct2_folder else
               "With faster-whisper (CTranslate2): convert the model with vocabtune's "
               "`finetune.py export --model DIR --quantization int8` and load the result with "
               "`faster_whisper.WhisperModel(FOLDER)`."))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _duration(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


# -- model facts from recorded metadata -----------------------------------------------------------

TRAIN_SECONDS_KEYS = ("train_seconds", "training_seconds", "train_runtime", "wall_time_s",
                      "seconds")


def lora_from_dicts(train: Mapping[str, Any], adapter_config: Mapping[str, Any]) -> dict[str, Any]:
    """LoRA settings: peft's ``adapter_config.json`` is the ground truth; the training config
    (``TrainConfig`` field names, or a nested ``lora`` dict) fills what it lacks."""
    nested = train.get("lora") if isinstance(train.get("lora"), Mapping) else {}
    sources = {"r": (adapter_config.get("r"), nested.get("r"), train.get("lora_r")),
               "alpha": (adapter_config.get("lora_alpha"), nested.get("alpha"),
                         train.get("lora_alpha")),
               "dropout": (adapter_config.get("lora_dropout"), nested.get("dropout"),
                           train.get("lora_dropout")),
               "target_modules": (adapter_config.get("target_modules"),
                                  nested.get("target_modules"), train.get("target_modules"))}
    lora = {}
    for key, values in sources.items():
        value = next((v for v in values if v is not None), None)
        if isinstance(value, (list, tuple, set)):
            value = sorted(str(v) for v in value)
        if value is not None:
            lora[key] = value
    return lora


def training_record(train: Mapping[str, Any], merge: Mapping[str, Any] | None = None,
                    report: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One flat dict of what training recorded: ``vocabtune_train.json`` (top level, or its
    nested ``config``/``train_config``) wins over ``vocabtune_merge.json`` (base model,
    language), which wins over ``report.json`` (dataset, language)."""
    record: dict[str, Any] = {}
    for source in (report or {}, merge or {}):
        record.update({k: source[k] for k in ("base_model", "dataset", "language")
                       if source.get(k) is not None})
    for section in (train.get("train_config"), train.get("config"), train):
        if isinstance(section, Mapping):   # per-epoch logs (lists of dicts) are not settings
            record.update({k: v for k, v in section.items()
                           if v is not None and not isinstance(v, Mapping) and not
                           (isinstance(v, list) and any(isinstance(x, Mapping) for x in v))})
    done = [e.get("epoch") for e in train.get("per_epoch") or [] if isinstance(e, Mapping)]
    if done and isinstance(done[-1], (int, float)):
        record["epochs_done"] = done[-1]     # a run stopped by --max-steps trains fewer than asked
    return record


def _epochs(train: Mapping[str, Any]) -> float | str | None:
    """The epochs trained; with the number asked beside it when the run stopped short."""
    asked, done = _num(train.get("epochs")), _num(train.get("epochs_done"))
    if done is None or asked is None or abs(done - asked) < 1e-6:
        return asked if asked is not None else done
    return f"{done:g} (of {asked:g} asked)"


def replay_text(sources: Any) -> str | None:
    """How a card names ``TrainConfig.replay``. A folder by its name only: the card may go
    public and must not show a home directory."""
    if not isinstance(sources, (list, tuple)) or not sources:
        return None
    names = {"builtin": "vocabtune's built-in everyday sentences (4 min)", "none": "none"}
    return ", ".join(names.get(str(s), f"`{Path(str(s)).name}`") for s in sources)


def speed_text(factors: Any) -> str | None:
    """How a card names ``TrainConfig.speed_perturb`` (None: not recorded, older runs)."""
    if not isinstance(factors, (list, tuple)):
        return None
    if not factors:
        return "none"
    return "copies of the train audio at " + ", ".join(f"{float(f):g}x" for f in factors) + " speed"


def model_facts_from_dicts(repo_id: str, train: Mapping[str, Any],
                           adapter_config: Mapping[str, Any], report: Mapping[str, Any],
                           adapter_repo: str | None = None) -> ModelFacts:
    """Everything the model card states, from the JSON files found beside the model. Any of
    the dicts may be empty: what is missing is reported as not recorded / not measured."""
    base, tuned = report_metrics(report)
    base_model = train.get("base_model") or adapter_config.get("base_model_name_or_path")
    seconds = _num(_first(train, TRAIN_SECONDS_KEYS))
    return ModelFacts(
        repo_id=repo_id, base_model=str(base_model) if base_model else None,
        dataset=str(train["dataset"]) if train.get("dataset") else None,
        language=str(train.get("language") or "en"), lora=lora_from_dicts(train, adapter_config),
        epochs=_epochs(train), replay=replay_text(train.get("replay")),
        speed_perturb=speed_text(train.get("speed_perturb")),
        context_weight=_num(train.get("context_weight")),
        train_seconds=seconds, resumed=bool(train.get("resumed_from")), base=base, finetuned=tuned,
        eval_split=str(report.get("split") or "validation"), adapter_repo=adapter_repo,
        eval_dataset=str(report["dataset"]) if report.get("dataset") else None,
        general=general_check(report))


def adapter_card(facts: ModelFacts, merged_repo: str) -> str:
    """README.md of the LoRA adapter repo: what it adapts and where the merged model is."""
    name = facts.repo_id.split("/")[-1]
    meta = ModelCardData(base_model=facts.base_model_id, library_name="peft",
                         language=facts.language, pipeline_tag=TASK,
                         tags=["whisper", "lora", "peft", "vocabtune"])
    base = facts.base_model or "the base model"
    lora = ", ".join(f"{k}={'+'.join(v) if isinstance(v, list) else v}"
                     for k, v in facts.lora.items()) or "not recorded"
    body = (f"LoRA adapter ({lora}) for `{base}`, trained with vocabtune "
            f"{facts.vocabtune_version}. The same weights merged into the base model: "
            f"`{merged_repo}` — its card has the measured results.\n\n"
            "```python\nfrom peft import PeftModel\n"
            "from transformers import WhisperForConditionalGeneration\n"
            f'base = WhisperForConditionalGeneration.from_pretrained("{base}")\n'
            f'model = PeftModel.from_pretrained(base, "{facts.repo_id}")\n```')
    return f"---\n{meta.to_yaml()}\n---\n\n# {name}\n\n{body}\n"
