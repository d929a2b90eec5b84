"""The recipe a training run was started with, kept beside its checkpoints so that
``--resume`` continues the same run rather than quietly mixing two.

Why: the Trainer restores its optimizer, scheduler and step from a checkpoint but takes every
other setting from the command line of the resumed call. Resuming with a different
``--epochs``, ``--replay`` or ``--lora-r`` would produce an adapter that matches neither
command and a model card that describes the second one. Settings that only change where or
how fast it runs (device, evaluation batch size) may differ.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .errors import VocabtuneError
from .fsutil import atomic_write_text

RECIPE_FILE = "vocabtune_recipe.json"
NOT_RECIPE = ("output_dir", "resume", "device", "eval_batch_size")
# Settings added after runs were already being recorded: a recipe without one was trained
# the way this value trains, so resuming an older run with it is the same run.
ADDED_LATER = {"context_weight": 1.0}


def recipe_of(cfg: TrainConfig) -> dict[str, Any]:
    """The settings that decide what a run learns, as JSON values (paths resolved)."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in NOT_RECIPE}
    for name in ("dataset", "vocab"):
        fields[name] = str(Path(fields[name]).expanduser().resolve())
    fields["base_model"] = base_name(cfg.base_model)
    return json.loads(json.dumps(fields, default=str))


def base_name(name: str) -> str:
    """A local base model folder made absolute (however it was spelt), so the adapter finds
    its base from anywhere and a resumed run compares equal; a Hub id as given."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.is_dir() else name


def write_recipe(cfg: TrainConfig) -> None:
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cfg.output_dir / RECIPE_FILE, json.dumps(recipe_of(cfg), indent=2) + "\n")


def check_resume_recipe(cfg: TrainConfig) -> None:
    """Refuse to resume with settings that differ from the run's start; runs started before
    the recipe was recorded are resumed as asked."""
    path = cfg.output_dir / RECIPE_FILE
    if not path.exists():
        return
    try:
        started = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise VocabtuneError(f"cannot read the run's recipe ({err})", file=path,
                             hint="restore the file, or start a new run in another --output-dir")
    started = {**ADDED_LATER, **started}
    now = recipe_of(cfg)
    changed = [name for name in sorted(set(started) | set(now)) if started.get(name) != now.get(name)]
    if changed:
        shown = "; ".join(f"{name}: {_show(started.get(name))} at the start, {_show(now.get(name))} now"
                          for name in changed)
        raise VocabtuneError(f"--resume with different settings ({shown})", file=path,
                             hint="resume with the flags the run was started with, or start a new "
                                  "run in another --output-dir")


def _show(value: Any) -> str:
    """A setting as it is typed: an empty list (``--speed-perturb none``) is "none", not blank."""
    if isinstance(value, list):
        return " ".join(map(str, value)) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return "unset" if value is None else str(value)
