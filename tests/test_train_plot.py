"""training.png: the validation figures per epoch, drawn from the same rows as the table."""

from __future__ import annotations

import io
import math

from matplotlib import image

from vocabtune.train_output import EpochMetrics
from vocabtune.train_plot import training_png

EPOCHS = [EpochMetrics(1.0, 18, 0.31, 0.14, 0.056, 0.927), EpochMetrics(2.0, 36, 0.07, 0.09, 0.034, 1.0),
          EpochMetrics(3.0, 54, 0.05, 0.08, 0.034, 1.0)]


def pixels(png: bytes):
    return image.imread(io.BytesIO(png), format="png")


def test_no_validation_draws_nothing():
    assert training_png([], None, "t") is None


def test_the_chart_is_a_png_with_two_panels_and_the_kept_epoch_marked():
    marked, unmarked = training_png(EPOCHS, 36, "me: whisper-base"), training_png(EPOCHS, None, "me: whisper-base")
    assert pixels(marked).shape[:2] == (418, 1100)             # 10 x 3.8 in at 110 dpi
    assert (pixels(marked) != pixels(unmarked)).any()          # the "kept" line is drawn


def test_missing_and_diverged_figures_are_gaps_not_errors():
    rows = [EpochMetrics(1.0, 2, None, math.nan, 0.5, None), EpochMetrics(2.0, 4, math.inf, 2.0, 0.4, None)]
    assert pixels(training_png(rows, 4, "t")).shape[:2] == (418, 1100)
