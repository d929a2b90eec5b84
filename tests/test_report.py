"""report: tables, JSON records and the chart, from hand-made scores (no model)."""

from __future__ import annotations

import io
import json
import re

import pytest

from vocabtune import report as R
from vocabtune.schema import EvalReport, TermScore


def _report(model: str, scores: dict[str, tuple[int, int]], wer: float = 0.2) -> EvalReport:
    per_term = [TermScore(t, occ, hits) for t, (hits, occ) in scores.items()]
    hits, occ = sum(s.hits for s in per_term), sum(s.occurrences for s in per_term)
    return EvalReport(model=model, wer=wer, term_recall=hits / occ if occ else None,
                      term_precision=1.0, term_f1=None, term_wer=0.5, other_wer=0.1,
                      per_term=per_term, num_chunks=4, seconds=3.25)


REPORTS = {
    "finetuned": _report("runs/x/best", {"vLLM": (2, 2), "LoRA": (1, 3), "GGUF": (1, 1), "Unseen": (0, 0)}, 0.1),
    "base": _report("openai/whisper-base", {"vLLM": (0, 2), "LoRA": (1, 3), "GGUF": (1, 1), "Unseen": (0, 0)}),
}


def test_rows_are_in_reading_order_whatever_the_dict_order():
    assert R.ordered({"finetuned_prompt": 1, "finetuned": 1, "base": 1, "base_prompt": 1}) == [
        "base", "base_prompt", "finetuned", "finetuned_prompt"]
    assert R.main_key(REPORTS) == "finetuned"
    assert R.main_key({"base": REPORTS["base"]}) == "base"


def test_terms_sorted_worst_first_for_the_main_model_and_unseen_ones_left_out():
    # LoRA 33% first; then the 100% terms, the one base also got (GGUF) after vLLM
    assert R.sorted_terms(REPORTS) == ["LoRA", "vLLM", "GGUF"]
    assert R.unseen_terms(REPORTS) == ["Unseen"]


def test_summary_table_shows_counts_and_dashes_for_what_was_not_measured():
    lines = R.summary_table(REPORTS, {}).splitlines()
    assert lines[0].split()[:3] == ["model", "WER", "term"]
    assert lines[2].split()[:4] == ["base", "20.0%", "33.3%", "(2/6)"]
    assert lines[3].split()[:4] == ["fine-tuned", "10.0%", "66.7%", "(4/6)"]
    assert lines[3].split()[5] == R.NOT_MEASURED          # F1 is None
    general = {"base": _report("b", {}, 0.05)}
    with_general = R.summary_table(REPORTS, general).splitlines()
    assert "general WER" in with_general[0]
    assert "5.0%" in with_general[2] and R.NOT_MEASURED in with_general[3].split()


def test_markdown_table_is_well_formed_with_right_aligned_numbers():
    md = R.summary_table(REPORTS, {}, markdown=True).splitlines()
    assert len({line.count("|") for line in md}) == 1
    assert md[1].startswith("|-") and md[1].endswith(":|")
    assert md[2].startswith("| base ")


def test_term_table_gives_hits_over_occurrences_per_model():
    rows = R.term_table(REPORTS).splitlines()
    assert rows[0].split() == ["term", "in", "refs", "base", "fine-tuned"]
    assert rows[2].split() == ["LoRA", "3", "1/3", "33%", "1/3", "33%"]
    assert rows[3].split() == ["vLLM", "2", "0/2", "0%", "2/2", "100%"]
    assert all("Unseen" not in r for r in rows)


def test_json_records_round_trip_with_recall_per_term():
    data = json.loads(json.dumps(R.report_dict(REPORTS["finetuned"])))
    assert data["per_term"][0] == {"term": "vLLM", "occurrences": 2, "hits": 2,
                                   "false_alarms": 0, "recall": 1.0}
    assert data["per_term"][3]["recall"] is None
    assert R.headline(REPORTS["base"]) == {"wer": 0.2, "term_recall": 2 / 6,
                                           "term_precision": 1.0, "term_f1": None}
    assert R.headline(None) is None


def test_documents_name_the_models_and_the_unmeasured_terms():
    text = R.format_terminal(REPORTS, {}, "data/lingo")
    assert text.startswith("data/lingo (validation, 4 chunks)")
    assert "base: openai/whisper-base" in text and "fine-tuned: runs/x/best" in text
    assert "1 term never occurs in validation" in text and "Unseen" in text
    md = R.format_markdown(REPORTS, {}, "data/lingo", chart="report.png")
    assert md.startswith("# Evaluation of runs/x/best")
    assert "![term recall per term](report.png)" in md and "## Term recall per term" in md


def test_chart_is_a_png_sized_to_the_terms_and_absent_without_terms():
    from PIL import Image

    png = R.term_recall_png(REPORTS, "Term recall")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    assert image.width > 600 and image.height > 200
    many = {k: _report(r.model, {f"term {i}": (i % 3, 2) for i in range(40)}) for k, r in REPORTS.items()}
    taller = Image.open(io.BytesIO(R.term_recall_png(many, "Term recall")))
    assert taller.height > 3 * image.height
    none = {"base": _report("b", {"Unseen": (0, 0)})}
    assert R.term_recall_png(none, "x") is None


def test_chart_draws_dollar_signs_in_terms_and_title_as_text():
    """Matplotlib reads "$...$" as mathtext: "$x^$" raised after all the decoding was done."""
    terms = {"$x^$": (1, 2), "costs $5 or $6": (2, 2), "$HOME": (0, 1)}
    reports = {k: _report(r.model, terms) for k, r in REPORTS.items()}
    assert R.term_recall_png(reports, "Term recall on $data$_{x}")[:8] == b"\x89PNG\r\n\x1a\n"


ODD_TERMS = ["a|b", "*bold*", "snake_case_name", "`tick`", "$PATH and $HOME", "[link](x)", "<b>HTML</b>",
             "# head", "back\\slash", "x & y", "café", "Müller", "αβγ", "東京"]


def test_report_md_shows_every_term_and_model_name_literally():
    """Rendered as the Hub renders it (GFM tables): each term is one cell with its own text, and
    no term or model name becomes emphasis, code, a link, HTML or a broken row."""
    markdown_it = pytest.importorskip("markdown_it")
    html = __import__("html")

    terms = {t: (1, 2) for t in ODD_TERMS} | {"never|said*": (0, 0)}
    reports = {"base": _report("openai/whisper-base", terms), "finetuned": _report("runs/x_*y*/best", terms)}
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(
        R.format_markdown(reports, {}, "data/my_*voice*"))
    cells = [html.unescape(c) for c in re.findall(r"<tr>\s*<td>(.*?)</td>", rendered)]
    assert sorted(cells[2:]) == sorted(ODD_TERMS)          # after the summary's two model rows
    assert all(row.count("<td") == 4 for row in re.findall(r"<tr>\s*<td>.*?</tr>", rendered, re.S)[2:])
    for tag in ("<em>", "<strong>", "<code>", "<a ", "<b>", "<h1>head"):
        assert tag not in rendered
    assert "runs/x_*y*/best" in html.unescape(rendered) and "data/my_*voice*" in html.unescape(rendered)
    assert "never|said*" in html.unescape(rendered.split("never occur")[1])


def _labels_overlap(fig) -> bool:
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in fig.axes[0].get_yticklabels()), key=lambda b: b.y0)
    return any(a.y1 > b.y0 for a, b in zip(boxes, boxes[1:]))


def test_chart_of_a_long_vocabulary_shows_the_worst_terms_readably_with_a_note():
    from matplotlib import pyplot as plt

    terms = {f"term {i:03d}" + (" with a very long name" * 5 if i % 7 == 0 else ""): (i % 3, 2)
             for i in range(300)}
    reports = {k: _report(r.model, terms) for k, r in REPORTS.items()}
    fig = R.term_recall_figure(reports, "Term recall")
    try:
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert len(labels) == R.MAX_CHART_TERMS
        assert [label.rsplit(" (", 1)[0] for label in labels if "…" not in label] == [
            t for t in R.sorted_terms(reports)[:R.MAX_CHART_TERMS] if len(t) <= R.MAX_LABEL_CHARS]
        assert max(len(label) for label in labels) <= R.MAX_LABEL_CHARS + len(" (2×)")
        assert not _labels_overlap(fig)
        assert fig.get_size_inches()[1] < 15          # one screen or two, not 91 inches
        assert "the 40 terms with the lowest recall of 300" in fig.axes[0].get_xlabel()
    finally:
        plt.close(fig)
    md = R.format_markdown(reports, {}, "data/lingo", chart="report.png")
    assert "The chart shows the 40 terms with the lowest recall of 300; the table below lists them all." in md
    assert md.count("## Term recall per term") == 1 and all(f"| {R.md_text(t)} " in md for t in terms)


def test_chart_of_one_term_has_no_note():
    from matplotlib import pyplot as plt

    reports = {k: _report(r.model, {"vLLM": (1, 1)}) for k, r in REPORTS.items()}
    fig = R.term_recall_figure(reports, "Term recall")
    try:
        assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["vLLM (1×)"]
        assert "shown" not in fig.axes[0].get_xlabel()
    finally:
        plt.close(fig)
    assert "The chart shows" not in R.format_markdown(reports, {}, "d", chart="report.png")


def _drawn_labels(reports) -> tuple[list[str], list[str]]:
    """The chart's term labels, and matplotlib's warnings while drawing them."""
    import warnings

    from matplotlib import pyplot as plt

    fig = R.term_recall_figure(reports, "Term recall on données")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fig.canvas.draw()
        return [t.get_text() for t in fig.axes[0].get_yticklabels()], [str(w.message) for w in caught]
    finally:
        plt.close(fig)


def test_chart_draws_accented_greek_and_cyrillic_terms_and_names_undrawable_ones_by_row(monkeypatch, caplog):
    monkeypatch.setattr(R, "FALLBACK_FAMILIES", (), raising=False)   # as on a machine with no CJK font
    terms = {"東京": (0, 2), "café": (1, 2), "Müller": (1, 2), "αβγ": (2, 2), "Привет": (2, 2)}
    labels, warned = _drawn_labels({k: _report(r.model, terms) for k, r in REPORTS.items()})
    assert labels == ["row 1 of report.md's table (2×)", "café (2×)", "Müller (2×)", "αβγ (2×)", "Привет (2×)"]
    assert not [w for w in warned if "missing from font" in w]     # no boxes were drawn
    assert "東京" in caplog.text and "fonts-noto-cjk" in caplog.text


def test_chart_uses_an_installed_fallback_font_for_what_the_default_lacks(monkeypatch):
    terms = {"ᶁata": (1, 2)}             # U+1D81: in matplotlib's STIXGeneral, not in DejaVu Sans
    reports = {k: _report(r.model, terms) for k, r in REPORTS.items()}
    monkeypatch.setattr(R, "FALLBACK_FAMILIES", ("STIXGeneral",))
    labels, warned = _drawn_labels(reports)
    assert labels == ["ᶁata (2×)"] and not [w for w in warned if "missing from font" in w]
    monkeypatch.setattr(R, "FALLBACK_FAMILIES", ())
    assert _drawn_labels(reports)[0] == ["row 1 of report.md's table (2×)"]
