"""Evaluation results a person can read: terminal table, markdown, JSON and a PNG chart.

Pure formatting over :class:`~vocabtune.schema.EvalReport` records; nothing here loads a
model or touches the disk (the PNG comes back as bytes, written atomically by the caller).

Rows are keyed by what was scored, in this order (see :data:`LABELS`): ``base``,
``base_prompt`` (base + the vocabulary as a Whisper prompt), ``finetuned``,
``finetuned_prompt``. The JSON layout is documented in :mod:`vocabtune.evaluation`.
"""

from __future__ import annotations

import functools
import io
import logging
import re
from dataclasses import asdict
from typing import Any, Mapping, Sequence

from .schema import EvalReport, TermScore
from .scoring import normaliser_name
from .wer_interval import WerChange
from .word_changes import Changes, WordChange

log = logging.getLogger(__name__)

LABELS = {"base": "base", "base_prompt": "base + prompt",
          "finetuned": "fine-tuned", "finetuned_prompt": "fine-tuned + prompt"}
COLOURS = {"base": "#9e9e9e", "base_prompt": "#9ecae1",      # greys/light: no training
           "finetuned": "#d95f02", "finetuned_prompt": "#7570b3"}   # colourblind-safe pair
NOT_MEASURED = "–"
NOTE_EXAMPLES = 4          # new general-speech errors named in the terminal note
# ASCII punctuation that markdown (GitHub's, the Hub's: tables, emphasis, code, links, HTML,
# $math$) may read as syntax; CommonMark lets a backslash make any of it literal
MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()<>#+!|~&$])")


def md_text(text: str) -> str:
    """``text`` as markdown that shows exactly ``text``: a term such as "a|b" split its table
    row, and "*x*", "`x`", "[x](y)" or "<b>" turned into emphasis, code, a link or HTML."""
    return MARKDOWN_SYNTAX.sub(r"\\\1", text)


def md_code(text: str, *, in_table: bool = False) -> str:
    """``text`` as a code span that shows exactly it (CommonMark): fenced by one backtick more
    than its longest run of backticks, with a space inside the fence when it starts or ends
    with one; in a table a "|" is escaped, which GitHub and the Hub undo inside code too."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence, pad = "`" * (longest + 1), " " if text[:1] == "`" or text[-1:] == "`" else ""
    body = text.replace("|", "\\|") if in_table else text
    return f"{fence}{pad}{body}{pad}{fence}"


def percent(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value * 100:.1f}%"


def ordered(reports: Mapping[str, Any]) -> list[str]:
    """Keys in reading order: base first, then what improves on it."""
    return [k for k in LABELS if k in reports] + [k for k in reports if k not in LABELS]


def label(key: str) -> str:
    return LABELS.get(key, key)


# -- JSON ------------------------------------------------------------------------------------

def term_dict(score: TermScore) -> dict[str, Any]:
    return {"term": score.term, "occurrences": score.occurrences, "hits": score.hits,
            "false_alarms": score.false_alarms, "recall": score.recall}


def report_dict(report: EvalReport) -> dict[str, Any]:
    """One model's scores as plain JSON values (per_term as a list, recall included)."""
    data = asdict(report)
    data["per_term"] = [term_dict(s) for s in report.per_term]
    data["seconds"] = round(report.seconds, 2)
    return data


def wer_change_dict(changes: Changes | None) -> dict[str, Any] | None:
    found = changes.wer_change if changes is not None else None
    return None if found is None else asdict(found)


def changes_dict(changes: Changes | None) -> dict[str, list[dict[str, Any]]] | None:
    if changes is None:
        return None
    return {"new": [{"chunk": c.chunk, "ref": c.ref, "finetuned": c.wrong} for c in changes.new],
            "fixed": [{"chunk": c.chunk, "ref": c.ref, "base": c.wrong} for c in changes.fixed]}


def headline(report: EvalReport | None) -> dict[str, float | None] | None:
    """The few numbers a model card quotes."""
    if report is None:
        return None
    return {"wer": report.wer, "term_recall": report.term_recall,
            "term_precision": report.term_precision, "term_f1": report.term_f1}


# -- tables ----------------------------------------------------------------------------------

def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], *,
                 markdown: bool = False, right: Sequence[int] = ()) -> str:
    """Aligned columns (numbers right-aligned), as plain text or a GitHub markdown table."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [str(c).rjust(w) if i in right else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths))]
        return f"| {' | '.join(parts)} |" if markdown else "  ".join(parts).rstrip()

    if markdown:
        rule = "|" + "|".join(("-" * (w + 1) + ":") if i in right else "-" * (w + 2)
                              for i, w in enumerate(widths)) + "|"
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def summary_table(reports: Mapping[str, EvalReport], general: Mapping[str, EvalReport],
                  *, markdown: bool = False) -> str:
    """One row per model: WER, term recall/precision/F1, term vs other WER, general WER."""
    header = ["model", "WER", "term recall", "precision", "F1", "term WER", "other WER"]
    if general:
        header.append("general WER")
    header.append("seconds")
    rows = []
    for key in ordered(reports):
        r = reports[key]
        row = [label(key), percent(r.wer), _recall_cell(r), percent(r.term_precision),
               percent(r.term_f1), percent(r.term_wer), percent(r.other_wer)]
        if general:
            row.append(percent(general[key].wer) if key in general else NOT_MEASURED)
        rows.append(row + [f"{r.seconds:.1f}"])
    return render_table(header, rows, markdown=markdown, right=range(1, len(header)))


def _recall_cell(report: EvalReport) -> str:
    hits = sum(s.hits for s in report.per_term)
    occurrences = sum(s.occurrences for s in report.per_term)
    return f"{percent(report.term_recall)} ({hits}/{occurrences})" if occurrences else NOT_MEASURED


def term_table(reports: Mapping[str, EvalReport], *, markdown: bool = False) -> str:
    """Per term: occurrences in the references and hits/recall of every model; terms the
    fine-tuned model still misses first, so the table opens on what needs work."""
    keys = ordered(reports)
    terms = sorted_terms(reports)
    header = ["term", "in refs", *(label(k) for k in keys)]
    rows = []
    for term in terms:
        scores = [_score_of(reports[k], term) for k in keys]
        cells = [f"{s.hits}/{s.occurrences} {s.recall * 100:3.0f}%" if s.occurrences
                 else NOT_MEASURED for s in scores]
        rows.append([md_text(term) if markdown else term, str(scores[0].occurrences), *cells])
    return render_table(header, rows, markdown=markdown, right=range(1, len(header)))


def _score_of(report: EvalReport, term: str) -> TermScore:
    return next((s for s in report.per_term if s.term == term), TermScore(term=term))


def main_key(reports: Mapping[str, Any]) -> str:
    """The model the person is evaluating: the fine-tuned one when there is one."""
    return "finetuned" if "finetuned" in reports else ordered(reports)[0]


def sorted_terms(reports: Mapping[str, EvalReport]) -> list[str]:
    """Terms that occur in the references, lowest recall of the main model first, then
    lowest mean recall of the other rows, then by name (stable across runs)."""
    main_name = main_key(reports)
    main = reports[main_name]
    others = [reports[k] for k in ordered(reports) if k != main_name]

    def key(term: str) -> tuple[float, float, str]:
        rest = [_score_of(r, term).recall or 0.0 for r in others]
        return (_score_of(main, term).recall or 0.0, sum(rest) / max(1, len(rest)), term.casefold())

    return sorted((s.term for s in main.per_term if s.occurrences), key=key)


def unseen_terms(reports: Mapping[str, EvalReport]) -> list[str]:
    """Vocabulary terms that never occur in the references: their recall cannot be measured."""
    main = reports[main_key(reports)]
    return [s.term for s in main.per_term if not s.occurrences]


# -- whole documents -------------------------------------------------------------------------

def format_terminal(reports: Mapping[str, EvalReport], general: Mapping[str, EvalReport],
                    dataset: str, changes: Changes | None = None) -> str:
    """What ``finetune.py evaluate`` prints: the summary, then every term."""
    parts = [f"{dataset} (validation, {reports[main_key(reports)].num_chunks} chunks)",
             summary_table(reports, general)]
    if any(s.occurrences for s in reports[main_key(reports)].per_term):
        parts.append(term_table(reports))
    parts.append("\n".join(_notes(reports, general, changes)))
    return "\n\n".join(parts)


def format_markdown(reports: Mapping[str, EvalReport], general: Mapping[str, EvalReport],
                    dataset: str, chart: str | None = None, changes: Changes | None = None,
                    language: str = "en") -> str:
    """``report.md``: the same tables as the terminal, plus the chart when there is one."""
    main = reports[main_key(reports)]
    lines = [f"# Evaluation of {md_text(main.model)}", "",
             f"Dataset {md_text(dataset)}, validation split ({main.num_chunks} chunks). WER on text "
             f"normalised with {normaliser_name(language)}; terms scored on exact spelling "
             "as in the vocabulary, capitals included (surrounding punctuation ignored).", "",
             summary_table(reports, general, markdown=True), ""]
    if chart:
        shown, total = chart_terms(reports)
        note = chart_note(len(shown), total)
        lines += [f"![term recall per term]({chart})", ""]
        lines += [f"The chart shows {note}; the table below lists them all.", ""] if note else []
    if any(s.occurrences for s in main.per_term):
        lines += ["## Term recall per term", "", term_table(reports, markdown=True), ""]
    if changes is not None:
        lines += changes_markdown(changes)
    lines += [f"- {note}" for note in _notes(reports, general, changes, markdown=True)]
    return "\n".join(lines).rstrip() + "\n"


def changes_markdown(changes: Changes) -> list[str]:
    """Both lists in full: a person judges the forgetting from the words, not the rate."""
    lines = ["## General speech: words the fine-tune changed", "",
             f"The fine-tuned model makes {_errors(len(changes.new))} where the base model was "
             f"right, and fixes {len(changes.fixed)} of the base model's errors. Words as the WER "
             "counts them (normalised); where both models are wrong at the same place, in "
             "different ways, it is in neither list.", ""]
    for title, rows, who in (("New errors", changes.new, "fine-tuned wrote"),
                             ("Fixed", changes.fixed, "base wrote")):
        if rows:
            table = render_table(["chunk", "reference", who],
                                 [[str(c.chunk + 1), md_text(_words(c.ref)), md_text(_words(c.wrong))]
                                  for c in rows],
                                 markdown=True)
            lines += [f"### {title}", "", table, ""]
    return lines


def _errors(n: int) -> str:
    return f"{n} error{'' if n == 1 else 's'}"


def _words(text: str) -> str:
    return f"“{text}”" if text else "—"


def change_example(change: WordChange) -> str:
    if not change.ref:
        return f"inserted {_words(change.wrong)}"
    if not change.wrong:
        return f"dropped {_words(change.ref)}"
    return f"{_words(change.ref)} → {_words(change.wrong)}"


def _notes(reports: Mapping[str, EvalReport], general: Mapping[str, EvalReport],
           changes: Changes | None = None, markdown: bool = False) -> list[str]:
    """The notes under the tables; with ``markdown`` the names in them are escaped."""
    text = md_text if markdown else str
    notes = [f"{label(k)}: {text(r.model)}" for k, r in ((k, reports[k]) for k in ordered(reports))
             if k in ("base", "finetuned")]
    unseen = unseen_terms(reports)
    if unseen:
        what = "1 term never occurs" if len(unseen) == 1 else f"{len(unseen)} terms never occur"
        notes.append(f"{what} in validation, so recall is not measured for: "
                     f"{', '.join(map(text, unseen))}")
    if general:
        first = next(iter(general.values()))
        notes.append(f"general WER: forgetting check on {first.num_chunks} chunks of general speech")
    if changes is not None:
        shown = ", ".join(text(change_example(c)) for c in changes.new[:NOTE_EXAMPLES])
        more = ", ..." if len(changes.new) > NOTE_EXAMPLES else ""
        notes.append(f"general speech: {_errors(len(changes.new))} where base was right"
                     f"{f': {shown}{more};' if shown else ';'} {len(changes.fixed)} of base's fixed"
                     " (report.md lists them)")
        if changes.wer_change is not None:
            notes.append(wer_change_note(changes.wer_change))
    return notes


def wer_change_note(found: WerChange) -> str:
    """The general WER change with its interval, and what the interval says about it."""
    verdict = ("more than this test's noise" if found.tells_apart else
               "this test cannot tell it from no change")
    return (f"general WER change {signed_points(found.change)} points, {found.level:.0%} interval "
            f"{signed_points(found.low)} to {signed_points(found.high)} (paired bootstrap over {found.blocks} "
            f"stretches of up to {found.block_words} words): {verdict}")


def signed_points(fraction: float) -> str:
    """Percentage points with their sign; what rounds to 0.0 has none (not "-0.0")."""
    text = f"{fraction * 100:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text.replace("-", "−")


# -- chart -----------------------------------------------------------------------------------

BAR_KEYS = ("base", "finetuned")                        # drawn as bars ...
MARKERS = {"base_prompt": ("base", "D"), "finetuned_prompt": ("finetuned", "D")}  # ... + prompt as markers on them
TRACK_COLOUR = "#f3f3f3"                                # the 0–100% track behind each term
ROW_IN = 0.3                                            # inches of figure height per term
MAX_CHART_TERMS = 40        # rows drawn: 40 fit one screen; with 300 the chart was 10,000 px tall
MAX_LABEL_CHARS = 40        # a longer term is cut with "…": one label took most of the width
# Tried after the default font, glyph by glyph (matplotlib's font fallback), where installed:
# DejaVu Sans draws Latin, Greek and Cyrillic but no Chinese, Japanese or Korean
FALLBACK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK KR", "Source Han Sans",
                     "WenQuanYi Zen Hei", "Droid Sans Fallback", "Microsoft YaHei", "PingFang SC",
                     "Hiragino Sans", "Malgun Gothic", "Arial Unicode MS")
CJK_FONT_HINT = "install a font that has them, e.g. Noto Sans CJK (Debian/Ubuntu: fonts-noto-cjk)"


def chart_terms(reports: Mapping[str, EvalReport]) -> tuple[list[str], int]:
    """The terms the chart draws (the :data:`MAX_CHART_TERMS` with the lowest recall, which
    are what needs work) and how many terms were measured in all."""
    terms = sorted_terms(reports)
    return terms[:MAX_CHART_TERMS], len(terms)


def chart_note(shown: int, total: int) -> str | None:
    """Which terms the chart shows when it leaves some out (None when it shows them all)."""
    if shown >= total:
        return None
    return f"the {shown} terms with the lowest recall of {total}"


def term_recall_png(reports: Mapping[str, EvalReport], title: str) -> bytes | None:
    """Per-term recall as horizontal bars (base grey, fine-tuned orange), worst terms of the
    main model at the top; a "+ prompt" score is a diamond on its model's bar, so four
    scores per term stay two bars high and 40 terms fit one screen. None when no term occurs."""
    fig = term_recall_figure(reports, title)
    if fig is None:
        return None
    from matplotlib import pyplot as plt

    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return buf.getvalue()
    finally:
        plt.close(fig)


def term_recall_figure(reports: Mapping[str, EvalReport], title: str):
    """The chart as a matplotlib figure (the caller closes it); None when no term occurs."""
    terms, total = chart_terms(reports)
    if not terms:
        return None
    import matplotlib

    matplotlib.use("Agg")           # no display needed; safe in tests and on servers
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 1.5 + ROW_IN * len(terms)))
    try:
        bars = [k for k in BAR_KEYS if k in reports] or ordered(reports)[:1]
        height = 0.8 / len(bars)
        offsets = {k: (i - (len(bars) - 1) / 2) * height for i, k in enumerate(bars)}
        ax.barh(range(len(terms)), 100, height=0.9, color=TRACK_COLOUR)   # 0% still reads as a bar
        for key in bars:
            ax.barh([y + offsets[key] for y in range(len(terms))], _recalls(reports[key], terms),
                    height=height, color=COLOURS[key], label=_legend(reports, key))
        for key, (on, marker) in MARKERS.items():
            if key in reports and on in offsets:
                ax.scatter(_recalls(reports[key], terms), [y + offsets[on] for y in range(len(terms))],
                           marker=marker, s=28, color=COLOURS[key], edgecolor="black",
                           linewidth=0.6, zorder=3, label=_legend(reports, key))
        _style_axes(ax, terms, reports, title, chart_note(len(terms), total))
    except BaseException:
        plt.close(fig)
        raise
    return fig


def _recalls(report: EvalReport, terms: Sequence[str]) -> list[float]:
    return [(_score_of(report, t).recall or 0.0) * 100 for t in terms]


def _legend(reports: Mapping[str, EvalReport], key: str) -> str:
    return f"{label(key)}: {percent(reports[key].term_recall)} overall"


def _label(term: str) -> str:
    return term if len(term) <= MAX_LABEL_CHARS else term[:MAX_LABEL_CHARS - 1].rstrip() + "…"


@functools.lru_cache(maxsize=4)
def label_fonts(fallbacks: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[int]]:
    """The font families labels are drawn with (the default, then the installed ``fallbacks``)
    and every character they can draw between them."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    manager = font_manager.fontManager
    installed = {f.name for f in manager.ttflist}        # asked only for these: no "not found" logs
    paths = [manager.findfont(font_manager.FontProperties())] + [
        manager.findfont(font_manager.FontProperties(family=f), fallback_to_default=False)
        for f in fallbacks if f in installed]
    names, chars = [], set()
    for path in paths:
        font = FT2Font(path)
        names.append(font.family_name)
        chars.update(font.get_charmap())
    return tuple(dict.fromkeys(names)), frozenset(chars)


def _drawable(text: str, chars: frozenset[int]) -> bool:
    return all(ord(c) in chars for c in text if not c.isspace())


def _tick_labels(terms: Sequence[str], main: EvalReport, chars: frozenset[int]) -> list[str]:
    """Each term with its count; one that no installed font draws (Chinese without a CJK font)
    would be a row of boxes, so it is named by its row in report.md's table, in the same order."""
    labels, missing = [], []
    for row, term in enumerate(terms, start=1):
        if not _drawable(term, chars):
            missing.append(term)
            term = f"row {row} of report.md's table"
        labels.append(f"{_label(term)} ({_score_of(main, terms[row - 1]).occurrences}×)")
    if missing:
        log.warning("the chart has no font for %d term(s) (%s) and names them by their row in "
                    "report.md; %s", len(missing), ", ".join(missing[:5]), CJK_FONT_HINT)
    return labels


def _style_axes(ax, terms: Sequence[str], reports: Mapping[str, EvalReport], title: str,
                note: str | None = None) -> None:
    from matplotlib.ticker import PercentFormatter

    main = reports[main_key(reports)]
    families, chars = label_fonts(FALLBACK_FAMILIES)
    ax.set_yticks(range(len(terms)))
    # parse_math=False: a term such as "$HOME" or "$x^$" is text, not mathtext (which drew
    # "$5 or $6" in italics and raised on "$x^$", after all the decoding was done)
    ax.set_yticklabels(_tick_labels(terms, main, chars), parse_math=False, fontfamily=list(families))
    ax.set_ylim(len(terms) - 0.5, -0.5)          # first term (the worst) at the top
    ax.set_xlim(-2, 102)                         # markers at 0% and 100% drawn whole
    ax.xaxis.set_major_formatter(PercentFormatter())
    ax.set_xlabel("term recall: share of the term's occurrences (×) spelt exactly right"
                  + (f"\nshown: {note}; report.md lists them all" if note else ""))
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = dict(zip(*reversed(ax.get_legend_handles_labels())))
    names = [_legend(reports, k) for k in ordered(reports) if _legend(reports, k) in handles]
    ax.legend([handles[n] for n in names], names, loc="lower left", bbox_to_anchor=(0.0, 1.0),
              ncol=2, frameon=False, fontsize=9)
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold", pad=34, parse_math=False,
                 fontfamily=list(families))
