"""What a fine-tune changed in general speech: new errors and fixed ones, on hand-made texts."""

import pytest

from vocabtune import report as R
from vocabtune.schema import EvalReport
from vocabtune.word_changes import Changes, WordChange, WordError, only_in, word_changes, word_errors

REFS = ["The salt breeze came across from the sea.", "Hoist the load to your left shoulder."]


def test_word_errors_are_on_normalised_words_with_their_reference_positions():
    errors = word_errors(REFS, ["The salt breeze came across from the seat!", "hoist the load to your LEFT shoulder"])
    assert errors == [WordError(0, 7, 8, "sea", "seat")]


def test_insertions_and_deletions_sit_between_and_on_words():
    errors = word_errors(["a b c"], ["a x b"])
    assert errors == [WordError(0, 1, 1, "", "x"), WordError(0, 2, 3, "c", "")]
    assert errors[0].slots() == {2} and errors[1].slots() == {5}


def test_new_errors_are_where_base_was_right_and_fixed_where_the_tune_is():
    base = ["The salt breeze came across from the sea.", "Whist the load to your left shoulder."]
    tuned = ["The salt breeze came across from the seat.", "Hoist the load to your left shoulder."]
    changes = word_changes(REFS, base, tuned)
    assert changes == Changes(new=[WordChange(0, "sea", "seat")], fixed=[WordChange(1, "hoist", "whist")])


def test_errors_at_the_same_place_are_in_neither_list_even_when_written_differently():
    changes = word_changes(["read verse out loud"], ["reverse out love"], ["reverse outlog"])
    assert changes == Changes(new=[], fixed=[])


def test_an_error_next_to_another_models_error_is_still_new():
    # base drops "c"; the tune writes "b" wrong: neighbouring, not the same place
    changes = word_changes(["a b c"], ["a b"], ["a x"])
    assert changes.new == [WordChange(0, "b", "x")]
    assert changes.fixed == []       # the tune drops "c" too


def test_an_insertion_is_matched_by_position_and_chunks_are_kept_apart():
    errs = [WordError(0, 1, 1, "", "the"), WordError(1, 1, 1, "", "the")]
    assert only_in(errs, [WordError(0, 1, 1, "", "a")]) == [WordChange(1, "", "the")]


def test_empty_reference_and_mismatched_lengths():
    assert word_errors([""], ["hello there"]) == [WordError(0, 0, 0, "", "hello there")]
    assert word_errors(["a b"], [""]) == [WordError(0, 0, 2, "a b", "")]
    with pytest.raises(ValueError):
        word_errors(["a"], [])


def test_report_lists_both_in_markdown_json_and_a_terminal_note():
    changes = Changes(new=[WordChange(0, "sea", "seat"), WordChange(2, "", "the"), WordChange(3, "cat", "")],
                      fixed=[WordChange(1, "hoist", "whist")])
    md = "\n".join(R.changes_markdown(changes))
    assert "makes 3 errors where the base model was right, and fixes 1 of the base model's errors" in md
    assert "| 1     | “sea”     | “seat”           |" in md and "| 2     | “hoist”   | “whist”    |" in md
    assert R.changes_dict(changes)["fixed"] == [{"chunk": 1, "ref": "hoist", "base": "whist"}]
    reports = {"finetuned": EvalReport("tuned", 0.1, None, None, None, None, None)}
    note = R._notes(reports, {}, changes)[-1]
    assert note.startswith("general speech: 3 errors where base was right: “sea” → “seat”, inserted “the”, "
                           "dropped “cat”; 1 of base's fixed")
    assert "### Fixed" not in "\n".join(R.changes_markdown(Changes(new=[], fixed=[])))
