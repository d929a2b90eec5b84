"""``prepare_data.py check``: every recording/caption pair, one line per problem.

Split so ``build`` can run the very same checks without decoding anything twice:

* :func:`load_cues` parses every caption file once → :class:`ParsedCaptions`;
* :func:`measure_durations` decodes every recording once (``check`` needs only the
  length; ``build`` decodes anyway and passes the lengths it already has);
* :func:`check_pairs` is the core: recordings + known durations + parsed cues + terms in,
  a :class:`CheckReport` out. It decodes and reads nothing itself.

:func:`check_recordings` glues them together for the command line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from tqdm import tqdm

from .audio import Decoded, damage_hint, decode_checked, silent_error
from .captions import not_speech_problems, read_vtt, validate_cues
from .config import SAMPLE_RATE
from .errors import VocabtuneError
from .recordings import Recording, discover_recordings
from .schema import Cue, Problem, Severity
from .cue_audio import NOTHING_HEARD, Heard, listen
from .spelling import spelling_problems
from .vocab import read_vocab, term_texts, vocab_files

log = logging.getLogger(__name__)
BYTES_PER_SAMPLE = 2            # decode_pcm16 gives signed 16-bit mono


@dataclass
class CheckReport:
    """What ``check`` found. Exit status is non-zero when :attr:`errors` is non-empty."""

    problems: list[Problem] = field(default_factory=list)
    recordings: int = 0
    cues: int = 0
    notes: list[str] = field(default_factory=list)   # e.g. "no vocabulary: hints skipped"

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity is Severity.WARNING]

    def summary(self) -> str:
        """One line: ``checked 2 recordings, 82 cues: 0 errors, 1 warning``."""
        def n(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        line = (f"checked {n(self.recordings, 'recording')}, {n(self.cues, 'cue')}: "
                f"{n(len(self.errors), 'error')}, {n(len(self.warnings), 'warning')}")
        return line + "".join(f" ({note})" for note in self.notes)


@dataclass(frozen=True)
class ParsedCaptions:
    """Every caption file parsed once: cues by recording audio path, and parse problems."""

    cues: dict[Path, list[Cue]]
    problems: dict[Path, list[Problem]]


def load_cues(recordings: Sequence[Recording]) -> ParsedCaptions:
    """Parse each recording's caption file once (recordings without one get no entry).
    ``build`` reuses ``.cues`` for packing after :func:`check_pairs` found no errors."""
    cues: dict[Path, list[Cue]] = {}
    problems: dict[Path, list[Problem]] = {}
    for rec in recordings:
        if rec.vtt is not None:
            cues[rec.audio], problems[rec.audio] = read_vtt(rec.vtt)
    return ParsedCaptions(cues, problems)


def measure_durations(recordings: Sequence[Recording], parsed: ParsedCaptions | None = None
                      ) -> tuple[dict[Path, float | None], list[Problem]]:
    """Length in seconds of each recording, decoding each once with the wheel's ffmpeg.
    An unreadable file gets None and an ERROR problem instead of stopping the check.
    With ``parsed``, the decoded audio is also searched for speech with no cue and cues
    with no speech."""
    durations: dict[Path, float | None] = {}
    problems = []
    for rec in tqdm(recordings, desc="reading audio", unit="recording", disable=None):
        try:
            decoded = decode_checked(rec.audio)
        except VocabtuneError as err:
            durations[rec.audio] = None
            problems.append(audio_problem(rec.audio, err))
            continue
        durations[rec.audio] = len(decoded.data) // BYTES_PER_SAMPLE / SAMPLE_RATE
        problems += decoded_problems(rec.audio, decoded)
        if parsed:
            problems += heard_in(rec, parsed, decoded.data).problems(str(rec.vtt))
    return durations, problems


def decoded_problems(path: Path, decoded: Decoded) -> list[Problem]:
    """What decoding found wrong with a readable recording (``build`` uses this too)."""
    problems = damage_problems(path, decoded.damage)
    if decoded.silent:
        problems.append(audio_problem(path, silent_error(path), ""))
    return problems


def damage_problems(path: Path, damage: str | None) -> list[Problem]:
    """A recording ffmpeg decoded past damaged data: a WARNING (``build`` uses this too).
    Not an error: transcribe and build decode it the same way, so its captions line up
    with what is built, but the person should know a stretch of it is gone."""
    if damage is None:
        return []
    return [Problem(Severity.WARNING, str(path), None, "damaged audio",
                    damage_hint(damage))]


def heard_in(rec: Recording, parsed: ParsedCaptions, pcm16: bytes) -> Heard:
    """Speech with no cue and cues with no speech (:mod:`vocabtune.cue_audio`) of a
    caption file with no errors: beside one, such a finding is most likely the cue that
    failed to parse or is out of order, and the error says all there is to say."""
    if rec.vtt is None:
        return NOTHING_HEARD
    cues = parsed.cues.get(rec.audio, [])
    problems = [*parsed.problems.get(rec.audio, []), *validate_cues(cues, str(rec.vtt))]
    if any(p.severity is Severity.ERROR for p in problems):
        return NOTHING_HEARD
    return listen(cues, pcm16)


def audio_problem(path: Path, err: VocabtuneError, what: str = "unreadable audio: ") -> Problem:
    """An undecodable (or silent) recording as an ERROR problem (``build`` uses this too)."""
    return Problem(Severity.ERROR, str(path), None, f"{what}{err.message}",
                   err.hint or "re-export the recording as mp3, wav or flac")


def check_pairs(recordings: Sequence[Recording], durations: Mapping[Path, float | None],
                terms: Sequence[str] = (), parsed: ParsedCaptions | None = None,
                hints: bool = True) -> CheckReport:
    """The checks of every recording with its captions (pure apart from reading VTTs when
    ``parsed`` is not given). ``durations[audio]`` in seconds; None or missing = unknown,
    and then the "cue past the end of the audio" rule is skipped for that recording.
    ``terms``: vocabulary spellings for the misspelling hints (empty = no hints);
    ``hints=False`` leaves out the text hints (``build`` runs them itself)."""
    parsed = parsed or load_cues(recordings)
    report = CheckReport(recordings=len(recordings))
    seen: set[Path] = set()
    for rec in recordings:
        # train.mp3 and train.wav share train.vtt (an error of its own): one file, one check
        if rec.vtt is None or rec.vtt in seen:
            continue
        seen.add(rec.vtt)
        cues = parsed.cues.get(rec.audio, [])
        report.cues += len(cues)
        report.problems += caption_problems(cues, parsed.problems.get(rec.audio, []),
                                            str(rec.vtt), durations.get(rec.audio), terms, hints)
    return report


def caption_problems(cues: Sequence[Cue], parse_problems: Sequence[Problem], file: str,
                     duration: float | None, terms: Sequence[str] = (),
                     hints: bool = True) -> list[Problem]:
    """All problems of one caption file, in line order. A file that did not parse at all
    (no cues and a parse ERROR) is not also told it has "no cues". ``hints=False`` leaves
    out :func:`text_hints` (``build`` runs them while the audio decodes)."""
    problems = list(parse_problems)
    unusable = not cues and any(p.severity is Severity.ERROR for p in problems)
    if not unusable:
        problems += validate_cues(cues, file, duration)
    problems += text_hints(cues, terms, file) if hints else []
    return sorted(problems, key=lambda p: p.line or 0)


def text_hints(cues: Sequence[Cue], terms: Sequence[str], file: str) -> list[Problem]:
    """Warnings about what the text says, which need no audio: likely misspelt terms and
    markers that are not speech ("[inaudible]")."""
    return spelling_problems(cues, terms, file) + not_speech_problems(cues, file, terms)


def load_terms(vocab: Path) -> tuple[list[str], list[Problem], list[str]]:
    """Vocabulary spellings, problems, notes. The vocabulary is optional for ``check``:
    a missing or empty one only skips the hints (a note, not an error); a broken one
    (e.g. a duplicate term) is an ERROR, since ``build`` and training need it."""
    vocab = Path(vocab)
    if not vocab.exists() or (vocab.is_dir() and not any(vocab.iterdir())):
        return [], [], [f"no vocabulary in {vocab}: spelling hints skipped"]
    try:
        terms = term_texts(read_vocab(vocab))
    except VocabtuneError as err:
        return [], [Problem(Severity.ERROR, err.file or str(vocab), err.line, err.message,
                            err.hint or "")], []
    return terms, [], ([] if terms else [f"no terms in {vocab}: spelling hints skipped"])


def check_recordings(recordings: Path, vocab: Path) -> CheckReport:
    """``prepare_data.py check``: discover, decode each recording once, parse each caption
    file once, run every rule. Bad input never raises (except a missing folder)."""
    found, layout = discover_recordings(recordings)
    terms, vocab_problems, notes = load_terms(vocab)
    parsed = load_cues(found)
    durations, audio_problems = measure_durations(found, parsed)
    report = check_pairs(found, durations, terms, parsed)
    gaps = [p for p in audio_problems if p.severity is Severity.WARNING]
    unreadable = [p for p in audio_problems if p.severity is Severity.ERROR]
    # each caption file's problems in line order, the speech gaps among them
    # (dict.fromkeys: recordings sharing a caption file find its speech gaps once each)
    captions = sorted(dict.fromkeys(report.problems + gaps), key=lambda p: (p.file or "", p.line or 0))
    report.problems = layout + vocab_problems + unreadable + captions
    report.notes += notes
    log.debug("check: %s", report.summary())
    return report
