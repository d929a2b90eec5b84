"""Plain records passed between stages. Imports nothing from the package on purpose."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


@dataclass(frozen=True)
class Cue:
    """One caption cue. ``line`` is the 1-based line of its timing line in the VTT file."""

    start: float                 # s
    end: float                   # s
    text: str                    # plain text: tags removed, entities decoded, whitespace folded
    line: int | None = None

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def has_words(self) -> bool:
        """Whether the text says anything. "...", "-" or "♪" (Whisper's text for music or
        silence, or a person's mark for words they could not make out) transcribes nothing,
        so such a cue is left out of the dataset like an empty one."""
        return any(ch.isalnum() for ch in self.text)

    @property
    def trainable(self) -> bool:
        """Words over a length of audio: what build packs into chunks. Any other cue (empty,
        no words, zero length) is left out and ends the chunk before it."""
        return self.has_words and self.end > self.start


@dataclass(frozen=True)
class Chunk:
    """Consecutive cues of one recording packed into one <= 30 s training example."""

    source: str                  # recording file name
    cues: tuple[Cue, ...]

    @property
    def start(self) -> float:
        return self.cues[0].start

    @property
    def end(self) -> float:
        return self.cues[-1].end

    @property
    def text(self) -> str:
        return " ".join(c.text for c in self.cues if c.text)


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding of ``check``: printed as ``file:line: severity: message — hint``."""

    severity: Severity
    file: str
    line: int | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        tail = f" — {self.hint}" if self.hint else ""
        return f"{where}: {self.severity.value}: {self.message}{tail}"


@dataclass(frozen=True)
class Term:
    """A vocabulary term spelt as it must come out, with optional aliases (spoken forms,
    known mis-hearings) used only for suggestions."""

    text: str
    aliases: tuple[str, ...] = ()
    file: str | None = None
    line: int | None = None


@dataclass
class TermScore:
    term: str
    occurrences: int = 0         # in the references
    hits: int = 0                # recognised with exact spelling
    false_alarms: int = 0        # in a hypothesis beyond what its reference has

    @property
    def recall(self) -> float | None:
        return self.hits / self.occurrences if self.occurrences else None


@dataclass
class EvalReport:
    """Scores of one model on one split."""

    model: str
    wer: float
    term_recall: float | None
    term_precision: float | None
    term_f1: float | None
    term_wer: float | None       # WER over reference words inside terms ("biased")
    other_wer: float | None      # WER over the rest ("unbiased")
    per_term: list[TermScore] = field(default_factory=list)
    num_chunks: int = 0
    seconds: float = 0.0         # wall time of the evaluation
