"""``prepare_data.py suggest``: propose vocabulary corrections for a base VTT.

For each cue, :class:`vocabtune.matching.Matcher` finds likely mis-hearings of terms. They
are patched into the *file text* — only the words found, on the lines where they stand —
rather than re-formatting the cues, so NOTE blocks, cue identifiers, settings, tags and line
breaks the person wrote survive both in ``<name>.suggested.vtt`` and under ``--apply``.

The person's VTT is never touched unless they ask (``--apply``) and confirm at a terminal
(``--yes`` skips the question); its exact bytes are first kept as a timestamped
``.bak.vtt`` beside it, and every file is written atomically (:mod:`vocabtune.fsutil`).
"""

from __future__ import annotations

import html
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from .backups import keep_backup
from .captions import normalise_newlines, read_vtt
from .errors import VocabtuneError
from .fsutil import atomic_write_bytes
from .matching import Matcher, Suggestion
from .recordings import DERIVED_VTT_SUFFIXES
from .schema import Cue, Severity
from .vocab import read_vocab

log = logging.getLogger(__name__)
SUGGESTED_SUFFIX = ".suggested.vtt"
YES_ANSWERS = ("y", "yes")

Echo = Callable[[str], None]
Ask = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Edit:
    """One suggestion placed in the file: ``text[start:end]`` becomes ``term`` (the
    vocabulary's spelling, with a plural ending the text gave it)."""

    line: int                   # 1-based line of the VTT where the words stand
    start: int                  # offsets in the file text (newlines normalised to LF)
    end: int
    found: str
    term: str


@dataclass(frozen=True)
class FilePlan:
    """What ``suggest`` found for one VTT and what it would write."""

    path: Path
    original: bytes             # the file as read, to detect edits made while we asked
    edits: list[Edit]
    suggested: str              # the patched file text (LF newlines)

    @property
    def suggested_path(self) -> Path:
        return suggested_path(self.path)

    def review(self) -> list[str]:
        """The review list, one line per edit, as a person greps it: file:line: a -> b."""
        return [f'{self.path}:{e.line}: "{" ".join(e.found.split())}" -> "{e.term}"' for e in self.edits]


def suggested_path(vtt: Path) -> Path:
    return vtt.with_name(vtt.name.removesuffix(".vtt") + SUGGESTED_SUFFIX)


def log_echo(line: str) -> None:
    """Default output of :func:`suggest_command` for library callers; the CLI passes print."""
    log.info("%s", line)


def ask_tty(prompt: str) -> str | None:
    """The person's answer, or None when nobody can answer (stdin is no terminal, or EOF):
    a pipe or a CI job must never be taken as consent to edit a file."""
    if sys.stdin is None or not sys.stdin.isatty():
        return None
    try:
        return input(prompt)
    except EOFError:
        return None


# --- planning (pure over text) ---------------------------------------------------------

def plan_text(text: str, cues: Sequence[Cue], matcher: Matcher, file: str = "<vtt>") -> list[Edit]:
    """Suggestions for every cue, located in ``text`` (LF newlines). A suggestion whose
    words cannot be found verbatim in the file (an inline tag or entity splits them) is
    logged and skipped rather than guessed."""
    lines = text.split("\n")
    starts = _line_starts(lines)
    edits: list[Edit] = []
    for cue in cues:
        if cue.line is None:
            continue
        block_start, block = _cue_text_block(lines, starts, cue.line)
        for s in matcher.suggest(cue.text):
            span = _locate(block, cue.text, s)
            if span is None:
                log.warning("%s:%d: cannot place the suggestion %r -> %r in the file text; skipped",
                            file, cue.line + 1, s.found, s.term)
                continue
            start, end = block_start + span[0], block_start + span[1]
            line = cue.line + 1 + block[:span[0]].count("\n")
            edits.append(Edit(line, start, end, text[start:end], s.replacement))
    return edits


def _line_starts(lines: list[str]) -> list[int]:
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    return starts + [pos]


def _cue_text_block(lines: list[str], starts: list[int], timing_line: int) -> tuple[int, str]:
    """Offset and text of the cue's text lines: after its timing line, up to a blank line."""
    first = timing_line                 # 0-based index of the line after the timing line
    last = first
    while last < len(lines) and lines[last].strip():
        last += 1
    return starts[min(first, len(lines))], "\n".join(lines[first:last])


def _phrase_pattern(found: str, escaped: bool) -> re.Pattern[str]:
    words = [html.escape(w, quote=False) if escaped else w for w in found.split()]
    return re.compile(r"\s+".join(re.escape(w) for w in words))


def _locate(block: str, plain: str, s: Suggestion) -> tuple[int, int] | None:
    """Span in the raw cue ``block`` of the same occurrence of ``s.found`` as in the
    cue's plain text (the k-th one, counting earlier ones), raw as written or escaped."""
    k = sum(1 for m in _phrase_pattern(s.found, False).finditer(plain) if m.start() < s.start)
    for escaped in (False, True):
        hits = list(_phrase_pattern(s.found, escaped).finditer(block))
        if len(hits) > k:
            return hits[k].span()
    return None


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with every edit made (spans never overlap: the matcher chose them so)."""
    for e in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:e.start] + html.escape(e.term, quote=False) + text[e.end:]
    return text


# --- files -----------------------------------------------------------------------------

def plan_file(path: Path, matcher: Matcher) -> FilePlan:
    """Read one VTT and plan its suggestions. A VTT with errors is refused: its cues (and
    so the lines we would patch) cannot be trusted until ``check`` is happy."""
    if Path(path).name.endswith(SUGGESTED_SUFFIX):
        raise VocabtuneError("this is suggest's own output, not a caption file", file=path,
                             hint=f"run suggest on {Path(path).name.removesuffix(SUGGESTED_SUFFIX)}.vtt")
    cues, problems = read_vtt(path)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        first = errors[0]
        raise VocabtuneError(first.message, file=first.file, line=first.line,
                             hint=(first.hint + "; " if first.hint else "")
                             + "then run suggest again (prepare_data.py check lists every problem)")
    original = Path(path).read_bytes()
    text = normalise_newlines(original.decode("utf-8-sig"))
    edits = plan_text(text, cues, matcher, str(path))
    return FilePlan(Path(path), original, edits, apply_edits(text, edits))


def encode_like(original: bytes, text: str) -> bytes:
    """``text`` (LF) encoded as the original file was: its BOM and its CRLF newlines kept,
    so applying suggestions changes only the words, not every line of the file."""
    if b"\r\n" in original:
        text = text.replace("\n", "\r\n")
    bom = "\ufeff" if original.startswith(b"\xef\xbb\xbf") else ""
    return (bom + text).encode("utf-8")


def write_suggested(plan: FilePlan) -> Path:
    """``<name>.suggested.vtt``: regenerated on every run (it is ours, not the person's)."""
    return atomic_write_bytes(plan.suggested_path, encode_like(plan.original, plan.suggested))


def apply_plan(plan: FilePlan) -> Path:
    """Write the suggestions into the person's VTT after keeping a backup; returns the
    backup. Refuses if the file changed since it was read (an editor saved meanwhile)."""
    if plan.path.read_bytes() != plan.original:
        raise VocabtuneError("the file changed since suggest read it; nothing applied", file=plan.path,
                             hint="run suggest again to see suggestions for the new text")
    backup = keep_backup(plan.path, plan.original)
    atomic_write_bytes(plan.path, encode_like(plan.original, plan.suggested))
    return backup


# --- the command -----------------------------------------------------------------------

def suggest_command(vtt_paths: list[Path], vocab: Path, apply: bool = False, yes: bool = False,
                    *, echo: Echo = log_echo, ask: Ask = ask_tty) -> int:
    """Plan every file, write each ``.suggested.vtt`` and its review list, then (``apply``)
    write the suggestions into the VTTs the person confirms. ``echo`` receives the output
    lines (the CLI passes ``print``); ``ask`` gets the question and returns the answer, or
    None when nobody can answer. Returns the exit status (0)."""
    terms = read_vocab(vocab)
    if not terms:
        raise VocabtuneError("the vocabulary has no terms", file=vocab,
                             hint="add one term per line, e.g. vocab/terms.txt")
    matcher = Matcher(terms)
    plans = [plan_file(p, matcher) for p in _captions_among(list(map(Path, vtt_paths)), echo)]
    for plan in plans:
        if plan.edits:
            for line in plan.review():
                echo(line)
            echo(f"{len(plan.edits)} suggestion(s) for {plan.path}; wrote {write_suggested(plan)}")
    nothing = [plan for plan in plans if not plan.edits]
    for plan in nothing:                # an earlier run's, for text corrected since
        plan.suggested_path.unlink(missing_ok=True)
    if nothing:
        echo(f"no suggestions for {_names(p.path for p in nothing)}")
    if apply:
        for plan in plans:
            _confirm_and_apply(plan, yes, echo, ask)
    return 0


def _captions_among(paths: list[Path], echo: Echo) -> list[Path]:
    """``paths`` without the files vocabtune writes beside captions (``*.suggested.vtt``,
    ``*.finetuned.vtt``, ``*.bak.vtt``) when the person's own are among them. Why:
    ``suggest recordings/*.vtt``, run a second time over sixty memos, took in the first
    run's outputs and stopped at the first. Named alone, such a file is still refused."""
    own = [p for p in paths if p.name.lower().endswith(DERIVED_VTT_SUFFIXES)]
    if not own or len(own) == len(paths):
        return paths
    echo(f"skipped {len(own)} file(s) vocabtune wrote ({', '.join(sorted({_derived(p) for p in own}))})")
    return [p for p in paths if p not in own]


def _derived(path: Path) -> str:
    return "*" + next(s for s in DERIVED_VTT_SUFFIXES if path.name.lower().endswith(s))


def _names(paths: Iterable[Path], most: int = 3) -> str:
    """One line for the files with nothing to suggest. Why: over sixty voice memos each one
    had a "0 suggestion(s)" line and a .suggested.vtt copied unchanged beside it."""
    paths = list(paths)
    listed = ", ".join(map(str, paths[:most])) + (", …" if len(paths) > most else "")
    return listed if len(paths) == 1 else f"{len(paths)} files ({listed})"


def _confirm_and_apply(plan: FilePlan, yes: bool, echo: Echo, ask: Ask) -> None:
    if not plan.edits:
        return
    n = len(plan.edits)
    if not yes:
        answer = ask(f"apply {n} suggestions to {plan.path}? [y/N] ")
        if answer is None:
            raise VocabtuneError("not applied: there is no terminal to confirm the change",
                                 file=plan.path, hint="run in a terminal, or add --yes to apply "
                                 f"without asking (review {plan.suggested_path} first)")
        if answer.strip().lower() not in YES_ANSWERS:
            echo(f"not applied to {plan.path}")
            return
    backup = apply_plan(plan)
    echo(f"applied {n} suggestion(s) to {plan.path} (the old file is kept as {backup})")
