"""``training.png``: a run's validation figures per epoch, for a person deciding whether to
train longer, shorter or with another learning rate.

The summary table has the numbers; the chart shows the shape at a glance: term recall
still climbing at the last epoch (train longer), validation loss rising while training
loss falls (over-fitting: fewer epochs or a lower rate), or loss jumping (the rate is too
high). The chosen checkpoint is marked, since it need not be the last.
"""

from __future__ import annotations

import io
import math
from typing import Sequence

from .train_output import EpochMetrics

RECALL_COLOUR = "#d95f02"       # the report chart's fine-tuned orange: the figure that matters
WER_COLOUR = "#5e3c99"
TRAIN_COLOUR = "#7f7f7f"
EVAL_COLOUR = "#1b7837"


def training_png(epochs: Sequence[EpochMetrics], best_step: int | None, title: str) -> bytes | None:
    """Two panels over the epochs: validation term recall and WER (%), and training and
    validation loss. None without a validation (nothing to draw)."""
    if not epochs:
        return None
    import matplotlib

    matplotlib.use("Agg")           # no display needed; safe in tests and on servers
    from matplotlib import pyplot as plt

    fig, (scores, losses) = plt.subplots(1, 2, figsize=(10, 3.8))
    try:
        x = [e.epoch for e in epochs]
        _scores_panel(scores, x, epochs)
        _loss_panel(losses, x, epochs)
        best = next((e.epoch for e in epochs if e.step == best_step), None)
        for ax in (scores, losses):
            _style(ax, x, best)
        fig.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _scores_panel(ax, x: list[float], epochs: Sequence[EpochMetrics]) -> None:
    from matplotlib.ticker import PercentFormatter

    recall = [_percent(e.term_recall) for e in epochs]
    if any(not math.isnan(r) for r in recall):
        ax.plot(x, recall, "o-", color=RECALL_COLOUR, label="term recall")
    ax.plot(x, [_percent(e.wer) for e in epochs], "s-", color=WER_COLOUR, label="WER")
    ax.set_ylim(-2, 102)                       # points at 0% and 100% drawn whole
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_title("validation", loc="left", fontsize=10)


def _loss_panel(ax, x: list[float], epochs: Sequence[EpochMetrics]) -> None:
    ax.plot(x, [_value(e.train_loss) for e in epochs], "o-", color=TRAIN_COLOUR, label="training loss")
    ax.plot(x, [_value(e.eval_loss) for e in epochs], "s-", color=EVAL_COLOUR, label="validation loss")
    ax.set_ylim(bottom=0)
    ax.set_title("loss (lower is better)", loc="left", fontsize=10)


def _style(ax, x: list[float], best: float | None) -> None:
    if best is not None:
        ax.axvline(best, color="black", linestyle=":", linewidth=1, label="kept (best/)")
    ax.set_xlabel("epoch")
    ax.set_xticks(x if len(x) <= 12 else x[:: math.ceil(len(x) / 12)])
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(frameon=False, fontsize=8, loc="center right")   # clear of 0% and 100%


def _percent(value: float | None) -> float:
    return math.nan if value is None else 100 * value


def _value(value: float | None) -> float:
    """None (no figure) and inf/NaN (a diverged run) are gaps in the line, not a crash."""
    return math.nan if value is None or not math.isfinite(value) else value
