"""The recipe a training run was started with, kept beside its checkpoints so that
``--resume`` continues the same run rather than quietly mixing two.

Why: the Trainer restores its optimizer, scheduler and step from a checkpoint but takes every
other setting from the command line of the resumed call. Resuming with a different
``--epochs``, ``--replay`` or ``--lora-r`` would produce an adapter that matches neither
command and a model card that describes the second one. Settings that only change where or
how fast it runs (device, evaluation batch size) may differ.

The paths alone cannot tell a dataset rebuilt in place, an edited ``vocab/`` or a base model
re-converted into the same folder from the ones the run started on, so the recipe also keeps
what the run read, by content (``inputs``): a digest of the dataset's (and any replay
dataset's) rows and of the base model's files, and the vocabulary terms.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Sequence

from .config import TrainConfig
from .errors import VocabtuneError
from .fsutil import atomic_write_text, files_digest

RECIPE_FILE = "vocabtune_recipe.json"
NOT_RECIPE = ("output_dir", "resume", "device", "eval_batch_size")
# Settings added after runs were already being recorded: a recipe without one was trained
# the way this value trains, so resuming an older run with it is the same run.
ADDED_LATER = {"context_weight": 1.0}
INPUTS = "inputs"               # the recipe's record of what the run read, by content
# Recorded later still, and not to be assumed for older runs (some ran under torchrun):
# compared only when the run recorded it.
COMPARED_IF_RECORDED = ("processes",)


def recipe_of(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that decide what a run learns, as JSON values (paths resolved)."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in NOT_RECIPE}
    for name in ("dataset", "vocab"):
        fields[name] = str(Path(fields[name]).expanduser().resolve())
    fields["base_model"] = base_name(cfg.base_model)
    # the effective batch is --batch-size x --gradient-accumulation x processes: with another
    # count the resumed steps would cover other examples under the old LR schedule
    fields["processes"] = int(os.environ.get("WORLD_SIZE", "1"))
    return json.loads(json.dumps(fields, default=str))


def base_name(name: str) -> str:
    """A local base model folder made absolute (however it was spelt), so the adapter finds
    its base from anywhere and a resumed run compares equal; a Hub id as given."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def inputs_of(cfg: TrainConfig, terms: Sequence[str]) -> dict[str, Any]:
    """What the run reads, by content (None where that cannot be told: a Hub model)."""
    from .replay import BUILTIN, NONE

    return {"dataset": _dataset_digest(cfg.dataset),
            # a list in --replay's order (which the settings check keeps): a path as a key
            # would escape the scrubbing of local paths from metadata that is pushed
            "replay": [None if name in (BUILTIN, NONE) else _dataset_digest(Path(name))
                       for name in cfg.replay],
            "base_model": _model_digest(base_name(cfg.base_model)),
            "terms": sorted(set(terms))}


def _dataset_digest(path: Path) -> str | None:
    from .dataset import dataset_files

    files = dataset_files(path)
    return files_digest(Path(path), files) if files else None


def _model_digest(name: str) -> str | None:
    from .modelio import model_files

    files = model_files(name)
    return files_digest(Path(name), files) if files else None


def write_recipe(cfg: TrainConfig, terms: Sequence[str]) -> None:
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    recipe = {**recipe_of(cfg), INPUTS: inputs_of(cfg, terms)}
    atomic_write_text(cfg.output_dir / RECIPE_FILE, json.dumps(recipe, indent=2) + "\n")


def _read_recipe(cfg: TrainConfig) -> dict[str, Any] | None:
    """The recipe the run was started with; None for runs started before it was recorded."""
    from .fsutil import load_json_object

    path = cfg.output_dir / RECIPE_FILE
    if not path.exists():
        return None
    return load_json_object(path, hint="restore the run's recipe, or start a new run in another --output-dir")


def check_resume_recipe(cfg: TrainConfig) -> None:
    """Refuse to resume with settings that differ from the run's start; runs started before
    the recipe was recorded are resumed as asked."""
    started = _read_recipe(cfg)
    if started is None:
        return
    started = {**ADDED_LATER, **started}
    started.pop(INPUTS, None)
    now = recipe_of(cfg)
    for name in COMPARED_IF_RECORDED:
        if name not in started:
            now.pop(name)
    changed = [name for name in sorted(set(started) | set(now)) if started.get(name) != now.get(name)]
    if changed:
        shown = "; ".join(f"{name}: {_show(started.get(name))} at the start, {_show(now.get(name))} now"
                          for name in changed)
        raise VocabtuneError(f"--resume with different settings ({shown})", file=cfg.output_dir / RECIPE_FILE,
                             hint="resume with the flags the run was started with, or start a new "
                                  "run in another --output-dir")


def check_resume_inputs(cfg: TrainConfig, terms: Sequence[str]) -> None:
    """Refuse to resume on other data than the run started on: the checkpoint would go on
    learning from rows, terms or base weights that its first steps never saw, and the
    result would match neither. Runs recorded without ``inputs`` are resumed as asked."""
    started = (_read_recipe(cfg) or {}).get(INPUTS)
    if not isinstance(started, dict):
        return
    now = inputs_of(cfg, terms)
    changes = [f"the dataset {cfg.dataset} was rebuilt"] if _differ(started.get("dataset"), now["dataset"]) else []
    before = started.get("replay") if isinstance(started.get("replay"), list) else []
    changes += [f"the replay dataset {name} was rebuilt" for name, old, digest
                in zip(cfg.replay, before, now["replay"]) if _differ(old, digest)]
    if _differ(started.get("base_model"), now["base_model"]):
        changes.append(f"the base model {base_name(cfg.base_model)} has other files")
    changes += _terms_change(started.get("terms"), now["terms"], cfg.vocab)
    if changes:
        raise VocabtuneError(f"cannot resume: since the run started, {'; '.join(changes)}",
                             file=cfg.output_dir,
                             hint="put back what it was started on, or start afresh (train "
                                  "without --resume, in another --output-dir)")


def _differ(started: str | None, now: str | None) -> bool:
    """Both known and different: an unreadable dataset is reported when it is loaded."""
    return bool(started and now and started != now)


def _terms_change(started: list[str] | None, now: list[str], vocab: Path) -> list[str]:
    """The vocabulary's change in words, naming a few of the terms added and removed."""
    if started is None or set(started) == set(now):
        return []
    parts = [f"{what}: {_few(sorted(terms))}" for what, terms in
             (("added", set(now) - set(started)), ("removed", set(started) - set(now))) if terms]
    return [f"the vocabulary {vocab} changed ({'; '.join(parts)})"]


def _few(names: list[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _show(value: Any) -> str:
    """A setting as it is typed: an empty list (``--speed-perturb none``) is "none", not blank."""
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "unset" if value is None else str(value)
