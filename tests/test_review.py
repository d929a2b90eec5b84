"""The side-by-side review: cues lined up by time, differing words marked, terms flagged,
on hand-made cues."""

import pytest

from vocabtune.review import (Row, TermMarks, format_review, line_up, mark_differences, md_marked,
                              review_rows, term_marks, totals, word_times)
from vocabtune.schema import Cue


def _marked(text: str) -> list[str]:
    """The words flagged as differing."""
    return [w for w, differs in text if differs]


def test_word_times_share_a_cue_by_characters():
    assert word_times(Cue(0.0, 4.0, "ab ab")) == [("ab", 1.0), ("ab", 3.0)]
    (_, short), (_, long) = word_times(Cue(0.0, 10.0, "the FlashAttention"))
    assert short < 2.5 and long > 5.0        # a long word takes most of the time


def test_a_model_cue_straddling_two_of_yours_is_split_at_their_boundary():
    mine = [Cue(0.0, 2.0, "one two"), Cue(2.0, 4.0, "three four")]
    model = [Cue(0.0, 4.0, "one two three four")]
    assert line_up(mine, model) == [Row(0.0, 2.0, "one two", "one two"),
                                    Row(2.0, 4.0, "three four", "three four")]


def test_words_in_a_pause_go_to_the_nearer_cue_and_none_are_lost():
    mine = [Cue(0.0, 2.0, "aa bb"), Cue(6.0, 8.0, "cc dd")]
    model = [Cue(1.0, 7.0, "bb xx yy cc")]          # "xx" at 2.5 s, "yy" at 5.5 s: in the pause
    rows = line_up(mine, model)
    assert [r.model for r in rows] == ["bb xx", "yy cc"]


def test_a_model_cue_over_none_of_yours_is_a_row_of_its_own_and_yours_unheard_are_empty():
    mine = [Cue(0.0, 2.0, "hello there"), Cue(10.0, 12.0, "goodbye")]
    model = [Cue(0.0, 2.0, "hello there"), Cue(5.0, 6.0, "Thanks for watching!")]
    assert line_up(mine, model) == [Row(0.0, 2.0, "hello there", "hello there"),
                                    Row(5.0, 6.0, None, "Thanks for watching!"),
                                    Row(10.0, 12.0, "goodbye", "")]


def test_words_differ_as_the_wer_counts_them_not_by_case_or_punctuation():
    mine, model = mark_differences("Hello, your dataset is here.", "hello your data set, is here")
    assert _marked(mine) == ["dataset"] and _marked(model) == ["data", "set,"]
    mine, model = mark_differences("It costs twenty five dollars.", "It costs 25 dollars.")
    assert _marked(mine) == [] and _marked(model) == []        # the same once normalised as a whole


def test_dropped_and_added_words_are_marked_on_their_side_only():
    mine, model = mark_differences("a LoRA adapter is tiny", "adapter is very tiny")
    assert _marked(mine) == ["a", "LoRA"] and _marked(model) == ["very"]
    assert mark_differences("", "you") == ((), (("you", True),))
    assert mark_differences("words here", "") == ((("words", True), ("here", True)), ())


def test_terms_are_right_only_when_spelt_exactly_and_extra_where_not_said():
    assert term_marks("LoRA on vLLM", "Lora on vLLM", ["LoRA", "vLLM"]) == \
        TermMarks(right=("vLLM",), missed=("LoRA",))
    assert term_marks("plain words", "plain vLLM", ["vLLM"]) == TermMarks(extra=("vLLM",))
    assert term_marks("LoRA", "Lora", []) == TermMarks()


def test_differing_runs_are_bold_and_transcript_text_is_escaped():
    mine, model = mark_differences("use *args here", "use **kwargs there")
    assert md_marked(mine) == r"use **\*args here**"
    assert md_marked(model) == r"use **\*\*kwargs there**"


MINE = [Cue(0.0, 2.0, "Red green."), Cue(2.0, 4.0, "Blue pink."), Cue(4.0, 6.0, "A LoRA adapter is tiny."),
        Cue(6.0, 8.0, "Cats dogs.")]
MODEL = [Cue(0.0, 4.0, "Red green. Blue pink."), Cue(4.0, 6.0, "Allure adapters tiny."),
         Cue(6.0, 8.0, "Cats dogs."), Cue(9.0, 10.0, "Thank you.")]


def test_the_review_shows_what_differs_and_folds_what_agrees():
    text = format_review(review_rows(MINE, MODEL, ["LoRA"]), "talk.vtt", "talk.finetuned.vtt")
    assert "- cues: 4 of yours, 2 with differences" in text
    assert "- vocabulary terms: 0 right, 1 missed, 0 written where not said" in text
    assert "*2 cues the same, 00:00:00.000 to 00:00:04.000*" in text
    assert "**00:00:04.000 → 00:00:06.000** · ✗ LoRA" in text
    assert "- yours: **A LoRA adapter is** tiny." in text
    assert "- model: **Allure adapters** tiny." in text
    assert "*1 cue the same, 00:00:06.000 to 00:00:08.000*" in text
    assert "- yours: *(no cue of yours here)*\n- model: **Thank you.**" in text
    assert "Cats dogs" not in text                 # an agreeing cue is not written out


def test_the_header_counts_are_the_projects_wer_over_the_rows():
    rows = review_rows(MINE, MODEL, ["LoRA"])
    t = totals(rows)
    # "a lora adapter is" -> "allure adapters": 2 substitutions + 2 deletions; "thank you" inserted
    assert (t.cues, t.differing, t.errors, t.words, t.missed) == (4, 2, 6, 11, 1)
    assert "6 word errors in 11 words (WER 54.5%, Whisper's English normaliser)" in format_review(
        rows, "talk.vtt", "talk.finetuned.vtt")
    assert "not checked (no vocabulary)" in format_review(rows, "a", "b", has_terms=False)


@pytest.mark.parametrize("mine, model", [([], []), ([Cue(0.0, 1.0, "hi")], [])])
def test_empty_transcripts_still_make_a_review(mine, model):
    text = format_review(review_rows(mine, model, []), "talk.vtt", "talk.finetuned.vtt")
    assert text.startswith("# talk.finetuned.vtt beside talk.vtt")


VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:02.000\n{}\n"


def test_write_review_never_replaces_a_review_without_force_and_backs_it_up_with(tmp_path):
    from vocabtune.review import write_review

    mine, new, out = tmp_path / "talk.vtt", tmp_path / "talk.finetuned.vtt", tmp_path / "talk.review.md"
    mine.write_text(VTT.format("A LoRA adapter"))
    new.write_text(VTT.format("Allure adapter"))
    assert write_review(mine, new, out, ["LoRA"]) == f"wrote {out}: 1 of 1 cues differ, WER 66.7%"
    assert "✗ LoRA" in out.read_text(encoding="utf-8")
    out.write_text("my notes")
    assert write_review(mine, new, out, ["LoRA"]).startswith(f"skipped {out}")
    assert out.read_text() == "my notes"
    write_review(mine, new, out, ["LoRA"], force=True)
    assert "✗ LoRA" in out.read_text(encoding="utf-8")
    [backup] = tmp_path.glob("talk.review.*.bak.md")
    assert backup.read_text() == "my notes"


def test_without_the_persons_vtt_there_is_no_review_and_the_line_says_why(tmp_path):
    from vocabtune.review import write_review

    new, out = tmp_path / "talk.finetuned.vtt", tmp_path / "talk.review.md"
    new.write_text(VTT.format("hello"))
    line = write_review(tmp_path / "talk.vtt", new, out, [])
    assert "nothing to compare" in line and str(tmp_path / "talk.vtt") in line
    assert not out.exists()


def test_no_words_of_yours_make_the_wer_undefined_not_zero():
    text = format_review(review_rows([], [Cue(0.0, 1.0, "you said nothing here")], []), "a.vtt", "b.vtt")
    assert "4 word errors in 0 words (WER undefined: no words of yours" in text
