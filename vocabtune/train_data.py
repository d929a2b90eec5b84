"""Dataset rows -> model inputs for training and validation, with Whisper's target shapes.

Each train row becomes plain, timestamped and/or prompted (on the previous chunk of the same
recording) by an exact share per epoch, chosen deterministically from (seed, epoch) so a
resumed run sees what an uninterrupted one would. The Trainer tells us the epoch through a
callback (``set_epoch``); accelerate's own ``set_epoch`` forwarding skips the dataset when the
sampler has one, so it cannot be relied on.

Log-mel features are computed when a row is fetched rather than stored: 0.96 MB per row
would cost gigabytes for an hour of recordings, while extracting one is a few ms next to a
training step of seconds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from torch.utils.data import Dataset

from .config import SAMPLE_RATE
from .dataset import example_audio
from .targets import Target, TargetCue, TokenLayout, build_target, chosen
from .term_weights import label_weights, term_token_runs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RowInfo:
    """What targets need from a row (no audio): text, cue times, where it came from."""

    text: str
    cues: tuple[TargetCue, ...]
    source: str
    start: float
    previous: int | None        # index of the preceding chunk of the same recording


def row_infos(split) -> list[RowInfo]:
    """Read text/timing columns once. Rows without a ``cues`` column (datasets built before
    it existed, or elsewhere) get one cue spanning the chunk: coarse, but still timestamps."""
    columns = set(split.column_names)
    meta = split.select_columns([c for c in ("text", "cues", "source", "start", "end") if c in columns])
    rows = meta.to_list()
    if "cues" not in columns:
        log.warning("dataset has no 'cues' column: timestamp targets span whole chunks "
                    "(rebuild with prepare_data.py build for per-cue times)")
    previous = _previous_indices(rows)
    return [RowInfo(text=r["text"], cues=_cues(r), source=r.get("source") or "?",
                    start=float(r.get("start") or 0.0), previous=previous[i])
            for i, r in enumerate(rows)]


def _cues(row: dict) -> tuple[TargetCue, ...]:
    cues = row.get("cues")
    if cues:
        return tuple(TargetCue(c["start"], c["end"], c["text"]) for c in cues if c["text"])
    duration = float(row.get("end") or 0.0) - float(row.get("start") or 0.0)
    return (TargetCue(0.0, max(duration, 0.0), row["text"]),)


def _previous_indices(rows: Sequence[dict]) -> list[int | None]:
    """For each row, the row of the same recording that ends last before it starts."""
    if not rows or "source" not in rows[0] or "start" not in rows[0]:
        return [None] * len(rows)
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["source"], rows[i]["start"]))
    previous: list[int | None] = [None] * len(rows)
    for before, after in zip(order, order[1:]):
        if rows[before]["source"] == rows[after]["source"]:
            previous[after] = before
    return previous


class ChunkExamples(Dataset):
    """A map-style torch dataset over one split. ``timestamp_share``/``prompt_share`` 0 gives
    plain targets (validation: what users get from a default transcription)."""

    def __init__(self, split, feature_extractor, layout: TokenLayout,
                 encode: Callable[[str], list[int]], *, timestamp_share: float = 0.0,
                 prompt_share: float = 0.0, seed: int = 0,
                 encoder_states: Sequence[Any] | None = None,
                 cross_kv: Sequence[Any] | None = None,
                 terms: Sequence[str] = (), context_weight: float = 1.0) -> None:
        self.split, self.feature_extractor = split, feature_extractor
        self.layout, self.encode = layout, encode
        self.timestamp_share, self.prompt_share, self.seed = timestamp_share, prompt_share, seed
        self.rows = row_infos(split)
        self.context_weight = context_weight    # see term_weights: 1 = no label_weights at all
        self.term_runs = ([term_token_runs(row.text, terms, encode) for row in self.rows]
                          if context_weight != 1.0 else [])
        self.encoder_states = encoder_states    # see encoder_cache: the frozen encoder, run once
        self.cross_kv = cross_kv                # ... and its cross-attention K/V, when they fit
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        n = len(self.rows)
        self.epoch = epoch
        self.timestamped = chosen(n, self.timestamp_share, seed=self.seed, epoch=epoch, stream="timestamp")
        self.prompted = chosen(n, self.prompt_share, seed=self.seed, epoch=epoch, stream="prompt")

    def __len__(self) -> int:
        return len(self.rows)

    def target(self, i: int, *, timestamps: bool, prompt: bool) -> Target:
        row = self.rows[i]
        previous = self.rows[row.previous].text if prompt and row.previous is not None else None
        return build_target(self.layout, self.encode, row.text,
                            cues=row.cues if timestamps else None, previous=previous,
                            where=(row.source, row.start))

    def __getitem__(self, i: int) -> dict[str, Any]:
        target = self.target(i, timestamps=i in self.timestamped, prompt=i in self.prompted)
        example: dict[str, Any] = {"decoder_input_ids": target.decoder_input_ids,
                                   "labels": target.labels}
        if self.term_runs:
            example["label_weights"] = label_weights(target.labels, self.term_runs[i],
                                                     self.context_weight)
        if self.encoder_states is not None:
            example["encoder_hidden"] = self.encoder_states[i]
            if self.cross_kv is not None:
                example["cross_kv"] = self.cross_kv[i]
            return example
        audio = example_audio(self.split[i])
        features = self.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np")
        return {"input_features": features.input_features[0], **example}

    def check_targets(self) -> None:
        """Fail before training, not in epoch 4, if any row's longest target (timestamped
        when that share is on; prompts are trimmed to fit, never an error) is over 448."""
        for i in range(len(self.rows)):
            self.target(i, timestamps=False, prompt=False)
            if self.timestamp_share > 0:
                self.target(i, timestamps=True, prompt=False)
