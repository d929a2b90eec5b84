"""What a training run leaves behind and reports: ``best/`` (adapter + processor +
``vocabtune_train.json``), the same JSON beside the checkpoints, and a summary table.

``best/`` is assembled in a temporary folder and renamed into place, so it is never
half-written; only the main process writes (several processes under torchrun).
"""

from __future__ import annotations

import json
import logging
import resource
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .config import TrainConfig
from .fsutil import atomic_write_bytes, atomic_write_text, swap_in, temp_dir
from .modelio import TRAIN_META
from .train_hooks import SELECTION_RULE, best_evaluation, diverged, evaluations

log = logging.getLogger(__name__)
BEST_DIR = "best"
TRAINING_PNG = "training.png"   # validation figures per epoch (train_plot.py)
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
CHECKPOINT_DONE = ("trainer_state.json", "adapter_model.safetensors")   # trainer_state is saved last


@dataclass(frozen=True)
class EpochMetrics:
    epoch: float
    step: int
    train_loss: float | None    # mean logged step loss since the previous validation
    eval_loss: float | None
    wer: float
    term_recall: float | None
    eval_seconds: float = 0.0   # validation (generation) time


@dataclass
class TrainResult:
    output_dir: Path
    best_dir: Path | None       # None on processes other than the main one
    best_checkpoint: str | None  # e.g. "checkpoint-15"
    epochs: list[EpochMetrics] = field(default_factory=list)
    global_step: int = 0
    train_seconds: float = 0.0  # wall time of trainer.train in this session (validation included)
    samples_per_second: float = 0.0   # training steps only
    peak_rss_mib: float = 0.0
    summary: str = ""


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest checkpoint that was completely written (a kill mid-save leaves one without
    trainer_state.json, which the Trainer's own lookup would pick and then fail on)."""
    done = [p for p in Path(output_dir).glob("checkpoint-*")
            if p.name.split("-")[-1].isdigit() and all((p / f).is_file() for f in CHECKPOINT_DONE)]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def check_checkpoint(checkpoint: Path) -> None:
    """Refuse to resume from a checkpoint whose files are damaged (a disk that filled up, a
    copy cut short, a hand edit), naming the file. Why here: the Trainer reads them deep
    inside ``train()`` and failed with a JSONDecodeError, SafetensorError or "PytorchStreamReader
    failed" traceback. Only headers are read, so this costs nothing on large checkpoints."""
    from .errors import VocabtuneError
    from .fsutil import load_json_object

    hint = (f"delete {checkpoint} and --resume again (from the checkpoint before it, if one is "
            "left), or train anew in another --output-dir")
    load_json_object(checkpoint / "trainer_state.json", hint)
    for file in sorted(Path(checkpoint).iterdir()):
        damage = _file_damage(file)
        if damage:
            raise VocabtuneError(damage, file=file, hint=hint)


def _file_damage(file: Path) -> str | None:
    """What is wrong with one checkpoint file, or None: a safetensors header that does not
    cover the file, or a torch.save zip archive without its end record (cut short)."""
    import zipfile

    from safetensors import SafetensorError, safe_open

    if file.suffix == ".safetensors":
        try:
            with safe_open(str(file), framework="pt"):
                return None
        except SafetensorError as err:
            return f"damaged weights file ({str(err).strip().splitlines()[0]})"
    if file.suffix in (".pt", ".pth"):          # not training_args.bin: resuming never reads it
        with open(file, "rb") as f:
            head = f.read(4)
        if not head:
            return "empty file"
        if head == b"PK\x03\x04" and not zipfile.is_zipfile(file):     # torch.save writes zip
            return "incomplete file (cut short: the end of its torch archive is missing)"
    return None


def epoch_metrics(log_history: list[dict[str, Any]]) -> list[EpochMetrics]:
    rows, losses = [], []
    for entry in log_history:
        if "loss" in entry:
            losses.append(entry["loss"])
        elif "eval_wer" in entry:
            rows.append(EpochMetrics(epoch=round(entry.get("epoch", 0.0), 2), step=entry["step"],
                                     train_loss=sum(losses) / len(losses) if losses else None,
                                     eval_loss=entry.get("eval_loss"), wer=entry["eval_wer"],
                                     term_recall=entry.get("eval_term_recall"),
                                     eval_seconds=entry.get("eval_runtime", 0.0)))
            losses = []
    return rows


def peak_rss_mib() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def finish_run(cfg: TrainConfig, inputs, trainer, seconds: float, logger) -> TrainResult:
    """Collect the figures; on the main process write best/ and the run's JSON."""
    state = trainer.state
    best = best_evaluation(state.log_history)
    result = TrainResult(
        output_dir=cfg.output_dir, best_dir=None,
        best_checkpoint=f"checkpoint-{best['step']}" if best else None,
        epochs=epoch_metrics(state.log_history), global_step=state.global_step,
        train_seconds=seconds, peak_rss_mib=peak_rss_mib(),
        samples_per_second=logger.samples_per_step * logger.steps / logger.train_seconds
        if logger.train_seconds else 0.0)
    if trainer.is_world_process_zero():
        meta = run_metadata(cfg, inputs, trainer, result)
        atomic_write_text(cfg.output_dir / TRAIN_META, json.dumps(meta, indent=2) + "\n")
        write_training_png(result, f"{Path(cfg.dataset).name}: {base_label(cfg.base_model)}")
        if result.best_checkpoint:
            result.best_dir = write_best(cfg.output_dir, result.best_checkpoint, inputs.processor, meta)
        result.summary = summary_text(result)
        result.summary += divergence_note(state.log_history, result.best_checkpoint, cfg.learning_rate)
        if adapter_unchanged(trainer.model):
            result.summary += (f"\n! the adapter is still all zeros: {result.global_step} step(s) were too few "
                               "to change the model (the learning rate warms up from 0); train longer")
    trainer.accelerator.wait_for_everyone()
    return result


def write_training_png(result: TrainResult, title: str) -> None:
    """The chart of the validation figures per epoch beside the checkpoints (none before
    the first validation). A run killed at epoch 3 of 8 and resumed redraws it whole."""
    from .train_plot import training_png

    best_step = int(result.best_checkpoint.split("-")[-1]) if result.best_checkpoint else None
    png = training_png(result.epochs, best_step, title)
    if png:
        atomic_write_bytes(result.output_dir / TRAINING_PNG, png)


def base_label(base_model: str) -> str:
    """The base model as the chart's title names it: a Hub id whole, a folder by its name."""
    return Path(base_model).name if Path(base_model).is_dir() else str(base_model)


def divergence_note(log_history, best_checkpoint: str | None, learning_rate: float) -> str:
    """A summary line when validation loss became NaN (train_hooks.diverged): those
    checkpoints were passed over, and the person should train again more gently."""
    bad = [e for e in evaluations(log_history) if diverged(e)]
    if not bad:
        return ""
    kept = (f"{best_checkpoint}, from before, is kept as best/" if best_checkpoint
            else "no checkpoint is usable and no best/ was written")
    return (f"\n! training diverged: the validation loss is not a number from epoch {bad[0]['epoch']:.2f} "
            f"on; {kept} — train again with a lower --learning-rate (this run: {learning_rate:g})")


def adapter_unchanged(model) -> bool:
    """LoRA's B matrices start at zero, so an adapter that never took a step with a learning
    rate above zero (a one-step run: the schedule warms up from 0) is exactly the base."""
    b = [p for name, p in model.named_parameters() if "lora_B" in name]
    return bool(b) and all(not p.detach().any() for p in b)


def write_best(output_dir: Path, checkpoint: str, processor, meta: dict[str, Any]) -> Path:
    """Copy the best adapter, save the full processor (PITFALLS #10), add the metadata."""
    source, target = output_dir / checkpoint, output_dir / BEST_DIR
    tmp = temp_dir(output_dir, prefix=".best-")
    try:
        for name in ADAPTER_FILES:
            shutil.copy2(source / name, tmp / name)
        processor.save_pretrained(tmp)
        processor.feature_extractor.save_pretrained(tmp)   # preprocessor_config.json
        processor.tokenizer.save_vocabulary(str(tmp))      # vocab.json, merges.txt, normalizer.json
        (tmp / TRAIN_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        swap_in(tmp, target)    # the old best/ goes only once the new one is in place
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def run_metadata(cfg: TrainConfig, inputs, trainer, result: TrainResult) -> dict[str, Any]:
    """Everything needed to reproduce and judge the run; merge/evaluate/push read it."""
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
    best = best_evaluation(trainer.state.log_history)
    return {
        "vocabtune_version": __version__, "base_model": inputs.base_model,
        "dataset": str(cfg.dataset), "language": cfg.language, "epochs": cfg.epochs,
        "lora": {"r": cfg.lora_r, "alpha": cfg.lora_alpha, "dropout": cfg.lora_dropout,
                 "target_modules": list(cfg.target_modules), "bias": "none"},
        "config": config, "train_chunks": len(inputs.train), "validation_chunks": len(inputs.validation),
        "terms": len(inputs.terms), "selection_rule": SELECTION_RULE,
        "best_checkpoint": result.best_checkpoint,
        "best": {"epoch": best["epoch"], "step": best["step"], "wer": best["eval_wer"],
                 "term_recall": best.get("eval_term_recall"), "eval_loss": best.get("eval_loss")}
        if best else None,
        "per_epoch": [asdict(e) for e in result.epochs], "global_step": result.global_step,
        "resumed_from": inputs.resume_from, "train_seconds": round(result.train_seconds, 1),
        "samples_per_second": round(result.samples_per_second, 3),
        "peak_rss_mib": round(result.peak_rss_mib, 1), "world_size": trainer.args.world_size,
        "device": str(trainer.args.device),
        "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
    }


def rule_applied(epochs) -> str:
    """The selection rule as it worked out: with no term in the validation split, recall is
    "n/a" at every epoch and WER alone decided, which "highest term recall" would hide."""
    if epochs and all(e.term_recall is None for e in epochs):
        return ("lowest validation WER, then the earlier checkpoint: no vocabulary term occurs in "
                "the validation split, so term recall was not measured")
    return SELECTION_RULE


def summary_text(result: TrainResult) -> str:
    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    def num(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = [f"{'epoch':>6} {'step':>6} {'train loss':>10} {'eval loss':>9} {'WER':>7} {'term recall':>11}"]
    for e in result.epochs:
        mark = "  <- best" if result.best_checkpoint == f"checkpoint-{e.step}" else ""
        lines.append(f"{e.epoch:>6.2f} {e.step:>6d} {num(e.train_loss):>10} {num(e.eval_loss):>9} "
                     f"{pct(e.wer):>7} {pct(e.term_recall):>11}{mark}")
    if result.best_checkpoint:
        lines.append(f"best: {result.best_checkpoint} ({rule_applied(result.epochs)})")
    steps = f"{result.global_step} step{'' if result.global_step == 1 else 's'}"
    lines.append(f"trained {steps} in {result.train_seconds:.0f} s "
                 f"({result.samples_per_second:.2f} samples/s while training, "
                 f"peak RSS {result.peak_rss_mib / 1024:.2f} GiB)")
    chart = f", {TRAINING_PNG}" if (result.output_dir / TRAINING_PNG).is_file() else ""
    lines.append(f"wrote {result.output_dir} (checkpoints, {TRAIN_META}{chart})")
    if result.best_dir:
        lines.append(f"wrote {result.best_dir} (best adapter + processor; next: "
                     f"finetune.py evaluate --model {result.best_dir})")
    return "\n".join(lines)
