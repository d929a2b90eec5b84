"""The side-by-side review ``finetune.py transcribe`` writes beside the new transcript: each
of the person's cues with what the fine-tuned model wrote over the same time, the words
that differ in bold, the vocabulary terms it got right or wrong, and a header with the
counts.

Why: a table of term counts says *that* "LoRA" was missed once, not where or as what; two
caption files side by side in an editor do not line up (the model cuts its cues elsewhere).
Markdown, not HTML: it reads as plain text in any editor and renders on GitHub and the Hub;
HTML would add colour but be unreadable as text, and a person reviewing 20 cues needs bold
words, not styling.

Pure functions over cues; :func:`write_review` is the only one that touches files.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jiwer

from .captions import fmt_time
from .config import DEFAULT_LANGUAGE
from .report import md_text
from .schema import Cue
from .scoring import error_counts, normaliser_name, normalize, term_scores

log = logging.getLogger(__name__)
REVIEW_SUFFIX = ".review.md"        # "validation.mp3" -> "validation.review.md"


# ---------------------------------------------------------------- cues lined up by time

@dataclass(frozen=True)
class Row:
    """One stretch of the recording: a cue of the person's and the model's words over it."""

    start: float                 # s
    end: float                   # s
    mine: str | None             # the person's cue text; None where they have no cue
    model: str                   # the model's words over that time ("" for none)


def word_times(cue: Cue) -> list[tuple[str, float]]:
    """Each word of ``cue`` with the time of its middle, spread over the cue by characters.
    Why characters: a cue has no word times, and long words take longer to say than
    short ones, so "the" and "FlashAttention" should not get the same share."""
    words = cue.text.split()
    total = sum(len(w) + 1 for w in words)
    out, at = [], 0
    for word in words:
        middle = (at + (len(word) + 1) / 2) / total
        out.append((word, cue.start + middle * cue.duration))
        at += len(word) + 1
    return out


def _distance(t: float, cue: Cue) -> float:
    return max(cue.start - t, 0.0, t - cue.end)


def _overlapping(cue: Cue, mine: Sequence[Cue]) -> list[int]:
    """Indexes of the person's cues that share time with ``cue`` (a zero-length cue: those
    that hold its instant)."""
    if cue.end > cue.start:
        return [i for i, m in enumerate(mine) if m.start < cue.end and cue.start < m.end]
    return [i for i, m in enumerate(mine) if m.start <= cue.start <= m.end]


def line_up(mine: Sequence[Cue], model: Sequence[Cue]) -> list[Row]:
    """The person's cues in time order, each with the model's words whose time (see
    :func:`word_times`) is nearest it among the cues the model's cue overlaps: a model cue
    that straddles two of the person's is split between them, a word in the pause between
    them goes to the nearer one. A model cue overlapping none of the person's is a row of
    its own (``mine=None``): text the model wrote where the person heard nothing."""
    mine = sorted(mine, key=lambda c: (c.start, c.end))
    words: list[list[str]] = [[] for _ in mine]
    extra: list[Row] = []
    for cue in sorted(model, key=lambda c: (c.start, c.end)):
        near = _overlapping(cue, mine)
        if not near:
            if cue.text.strip():
                extra.append(Row(cue.start, cue.end, None, " ".join(cue.text.split())))
            continue
        for word, t in word_times(cue):
            words[min(near, key=lambda i: _distance(t, mine[i]))].append(word)
    rows = [Row(c.start, c.end, " ".join(c.text.split()), " ".join(w)) for c, w in zip(mine, words)]
    return sorted(rows + extra, key=lambda r: (r.start, r.end))


# ---------------------------------------------------------------- words that differ

Marked = tuple[tuple[str, bool], ...]     # each word as written, and whether it differs


def _keys(words: Sequence[str], language: str) -> tuple[list[str], list[int]]:
    """The normalised words of ``words`` and, for each, the index of the word it came from
    ("$5" may be several, "um" none)."""
    keys, owners = [], []
    for i, word in enumerate(words):
        for key in normalize(word, language).split():
            keys.append(key)
            owners.append(i)
    return keys, owners


def _differing_spans(ref: Sequence[str], hyp: Sequence[str]) -> list[tuple[int, int, int, int]]:
    """(ref start, ref end, hyp start, hyp end) of each run of edits, from jiwer's alignment,
    the same minimum-edit alignment the WER counts (difflib's matching blocks are not
    minimal, so its marks would not add up to the errors)."""
    if not ref or not hyp:
        return [(0, len(ref), 0, len(hyp))] if ref or hyp else []
    spans: list[tuple[int, int, int, int]] = []
    for op in jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments[0]:
        if op.type == "equal":
            continue
        if spans and spans[-1][1] == op.ref_start_idx and spans[-1][3] == op.hyp_start_idx:
            r0, _, h0, _ = spans.pop()      # runs that touch are one difference
            spans.append((r0, op.ref_end_idx, h0, op.hyp_end_idx))
        else:
            spans.append((op.ref_start_idx, op.ref_end_idx, op.hyp_start_idx, op.hyp_end_idx))
    return spans


def mark_differences(mine: str, model: str, language: str = DEFAULT_LANGUAGE) -> tuple[Marked, Marked]:
    """Both texts word by word as written, each word flagged when it differs. Words are
    compared as the WER compares them (Whisper's normaliser: "set," is "set"), word by word
    so the marks land on the person's own words; a run of differing words that normalises
    to the same text as a whole ("twenty five" / "25") is not marked.

    Not word_changes.word_errors: that returns the normalised words, and the review shows
    the words as written."""
    a, b = mine.split(), model.split()
    (ka, oa), (kb, ob) = _keys(a, language), _keys(b, language)
    flags_a, flags_b = [False] * len(a), [False] * len(b)
    for r0, r1, h0, h1 in _differing_spans(ka, kb):
        wa, wb = sorted(set(oa[r0:r1])), sorted(set(ob[h0:h1]))
        if wa and wb and normalize(" ".join(a[wa[0]:wa[-1] + 1]), language) == \
                normalize(" ".join(b[wb[0]:wb[-1] + 1]), language):
            continue
        for i in wa:
            flags_a[i] = True
        for i in wb:
            flags_b[i] = True
    return tuple(zip(a, flags_a)), tuple(zip(b, flags_b))


# ---------------------------------------------------------------- terms and rows

@dataclass(frozen=True)
class TermMarks:
    """Vocabulary terms of one row, scored as ``evaluate`` scores them (scoring.term_scores)."""

    right: tuple[str, ...] = ()       # said, and spelt exactly by the model (once per occurrence)
    missed: tuple[str, ...] = ()      # said, and not spelt exactly by the model
    extra: tuple[str, ...] = ()       # spelt by the model where not said


def term_marks(mine: str, model: str, terms: Sequence[str]) -> TermMarks:
    if not terms:
        return TermMarks()
    scores = term_scores([mine], [model], terms)
    return TermMarks(right=tuple(s.term for s in scores for _ in range(s.hits)),
                     missed=tuple(s.term for s in scores for _ in range(s.occurrences - s.hits)),
                     extra=tuple(s.term for s in scores for _ in range(s.false_alarms)))


@dataclass(frozen=True)
class Reviewed:
    """One row with its marks."""

    row: Row
    mine: Marked
    model: Marked
    terms: TermMarks

    @property
    def same(self) -> bool:
        """Nothing to look at: no word differs and no term is missed or added."""
        return (self.row.mine is not None and not any(d for _, d in self.mine + self.model)
                and not self.terms.missed and not self.terms.extra)


def review_rows(mine: Sequence[Cue], model: Sequence[Cue], terms: Sequence[str],
                language: str = DEFAULT_LANGUAGE) -> list[Reviewed]:
    out = []
    for row in line_up(mine, model):
        marked_mine, marked_model = mark_differences(row.mine or "", row.model, language)
        out.append(Reviewed(row, marked_mine, marked_model, term_marks(row.mine or "", row.model, terms)))
    return out


# ---------------------------------------------------------------- markdown

def md_marked(words: Marked) -> str:
    """Words as escaped markdown, each run of differing words in bold ("**data set,**")."""
    out: list[str] = []
    run: list[str] = []
    for word, differs in words + (("", False),):
        if differs:
            run.append(md_text(word))
            continue
        if run:
            out.append(f"**{' '.join(run)}**")
            run = []
        if word:
            out.append(md_text(word))
    return " ".join(out)


def md_terms(marks: TermMarks) -> str:
    """"✗ LoRA · ✗ GPU (not said) · ✓ vLLM ×2": wrong first, they are what to look at."""
    def named(terms: Sequence[str], note: str = "") -> list[str]:
        return [f"{md_text(t)}{f' ×{n}' if n > 1 else ''}{note}" for t, n in Counter(terms).items()]

    wrong = named(marks.missed) + named(marks.extra, " (not said)")
    return " · ".join([f"✗ {t}" for t in wrong] + [f"✓ {t}" for t in named(marks.right)])


def md_row(r: Reviewed) -> list[str]:
    """A differing row: its time (as in the person's VTT, to search for), terms, both texts."""
    terms = md_terms(r.terms)
    head = f"**{fmt_time(r.row.start)} → {fmt_time(r.row.end)}**" + (f" · {terms}" if terms else "")
    mine = md_marked(r.mine) if r.row.mine is not None else "*(no cue of yours here)*"
    return [head, f"- yours: {mine}", f"- model: {md_marked(r.model) or '*(nothing)*'}", ""]


def md_same(run: Sequence[Reviewed]) -> list[str]:
    """Rows that agree, as one line: they are not what the person has to read."""
    n = len(run)
    return [f"*{n} cue{'s' if n > 1 else ''} the same, {fmt_time(run[0].row.start)} to "
            f"{fmt_time(run[-1].row.end)}*", ""]


def md_body(rows: Sequence[Reviewed]) -> list[str]:
    """Rows in time order, each run of agreeing rows folded into one line."""
    lines: list[str] = []
    run: list[Reviewed] = []
    for r in list(rows) + [None]:
        if r is not None and r.same:
            run.append(r)
            continue
        if run:
            lines += md_same(run)
            run = []
        if r is not None:
            lines += md_row(r)
    return lines


@dataclass(frozen=True)
class Totals:
    """The header's counts."""

    cues: int                    # the person's
    differing: int               # rows with something to look at
    errors: int                  # word errors (substitutions + deletions + insertions)
    words: int                   # the person's words, normalised
    right: int                   # term occurrences spelt exactly
    missed: int
    extra: int                   # terms written where not said

    @property
    def wer(self) -> float | None:
        """None with no words of the person's: the rate is undefined, not 0%."""
        return self.errors / self.words if self.words else None


def totals(rows: Sequence[Reviewed], language: str = DEFAULT_LANGUAGE) -> Totals:
    """Counts over the rows; the WER is the project's (scoring.error_counts), row by row as
    ``evaluate`` scores chunks, so text the model wrote where the person has no cue counts
    as inserted."""
    errors, words = error_counts([r.row.mine or "" for r in rows], [r.row.model for r in rows], language)
    return Totals(cues=sum(r.row.mine is not None for r in rows), differing=sum(not r.same for r in rows),
                  errors=errors, words=words, right=sum(len(r.terms.right) for r in rows),
                  missed=sum(len(r.terms.missed) for r in rows), extra=sum(len(r.terms.extra) for r in rows))


def md_header(t: Totals, mine_name: str, model_name: str, language: str, has_terms: bool) -> list[str]:
    terms = (f"{t.right} right, {t.missed} missed, {t.extra} written where not said"
             if has_terms else "not checked (no vocabulary)")
    return [f"# {md_text(model_name)} beside {md_text(mine_name)}", "",
            f"Each of your cues ({md_text(mine_name)}) with what the model wrote over the same time "
            f"({md_text(model_name)}). **Bold**: words that differ. ✗ a vocabulary term the model "
            "did not spell exactly, ✓ one it did.", "",
            f"- cues: {t.cues} of yours, {t.differing} with differences",
            f"- words: {t.errors} word errors in {t.words} words ({_wer_text(t.wer)}, {normaliser_name(language)})",
            f"- vocabulary terms: {terms}", ""]


def _wer_text(wer: float | None) -> str:
    return "WER undefined: no words of yours" if wer is None else f"WER {100 * wer:.1f}%"


def format_review(rows: Sequence[Reviewed], mine_name: str, model_name: str,
                  language: str = DEFAULT_LANGUAGE, has_terms: bool = True) -> str:
    """The whole review as markdown."""
    header = md_header(totals(rows, language), mine_name, model_name, language, has_terms)
    body = md_body(rows) if rows else ["*Neither file has a cue.*", ""]
    return "\n".join(header + body).rstrip("\n") + "\n"


# ---------------------------------------------------------------- the file

def review_path(new_vtt: Path, stem: str) -> Path:
    """``<stem>.review.md`` beside the new transcript (``validation.review.md``)."""
    from .recordings import same_name_in

    return same_name_in(Path(new_vtt).parent, f"{stem}{REVIEW_SUFFIX}")


def write_review(mine_vtt: Path, new_vtt: Path, out: Path, terms: Sequence[str], *,
                 force: bool = False, language: str = DEFAULT_LANGUAGE) -> str:
    """Write the review of ``new_vtt`` against the person's ``mine_vtt`` to ``out`` and
    return the line to print. Like the new transcript itself (captions.write_new_vtt), an
    existing review is kept unless ``force``, and then backed up first: the person may have
    written their notes into it. Without the person's file there is nothing to compare,
    and the line says so."""
    from .backups import write_new
    from .captions import read_vtt, unreadable

    if not Path(mine_vtt).is_file():
        return f"no review: {mine_vtt} not found, nothing to compare {Path(new_vtt).name} with"
    if Path(out).exists() and not force:
        return f"skipped {out} (exists; --force redoes it, keeping a backup)"
    bad = unreadable(mine_vtt)
    if bad:         # the transcript is kept: run the command again once the file is fixed
        return f"no review: {bad}; then run the command again for the review"
    rows = review_rows(read_vtt(mine_vtt)[0], read_vtt(new_vtt)[0], terms, language)
    text = format_review(rows, Path(mine_vtt).name, Path(new_vtt).name, language, has_terms=bool(terms))
    try:
        backup = write_new(out, text, force=force)
    except FileExistsError:          # made by someone else while we wrote
        return f"skipped {out} (exists; --force redoes it, keeping a backup)"
    if backup:
        log.info("kept the old %s as %s", Path(out).name, backup.name)
    t = totals(rows, language)
    return f"wrote {out}: {t.differing} of {t.cues} cues differ, {_wer_text(t.wer)}"
