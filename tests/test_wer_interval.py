"""The paired bootstrap interval of a WER change, on hand-made texts."""

import pytest

from vocabtune import report as R
from vocabtune.schema import EvalReport
from vocabtune.scoring import wer
from vocabtune.wer_interval import WerChange, block_counts, ref_lengths, wer_change
from vocabtune.word_changes import Changes, word_errors

# 25 words, then 12, then a chunk whose reference is empty
REFS = ["apple bread chair dance eagle fable grape house igloo jelly kite lemon mango night olive "
        "paper quilt river stone table umbra violet water yellow zebra",
        "the salt breeze came across from the sea and the gulls cried", ""]



def change_of(refs, base_hyps, tuned_hyps, **kw):
    """wer_change from texts, as evaluation calls it (each model's errors aligned once)."""
    return wer_change(ref_lengths(refs), word_errors(refs, base_hyps), word_errors(refs, tuned_hyps), **kw)

def test_blocks_are_runs_of_reference_words_and_errors_land_where_they_start():
    hyps = ["apple bread chair dance eagle fable grape house igloo jelly kite LEMON mango night olive "
            "paper quilt river stone table umbra violet water yellow zebra extra words",
            "the salt breeze came across from the seat and the gulls cried", "hello"]
    errors, words = block_counts(ref_lengths(REFS), word_errors(REFS, hyps))
    assert words.tolist() == [10, 10, 5, 10, 2, 0], "an empty reference still gets a block"
    # "lemon" -> "LEMON" is no error (normalised); two words inserted after the last one
    # land in the chunk's last block; "sea" -> "seat" is word 8 of chunk 2; "hello" is inserted
    assert errors.tolist() == [0, 0, 2, 1, 0, 1]


def test_the_change_is_the_difference_of_the_two_wers():
    base = [REFS[0], "the salt breeze came across from the sea and the gulls cried", ""]
    tuned = [REFS[0].replace("water", "waiter").replace("jelly", ""), "the salt breeze came across the seat "
             "and and the gulls cried", "hello there"]
    found = change_of(REFS, base, tuned)
    assert found.change == pytest.approx(wer(REFS, tuned) - wer(REFS, base))
    assert found.low <= found.change <= found.high
    assert found.blocks == 6


def test_no_change_gives_a_zero_interval_and_cannot_be_told_apart():
    found = change_of(REFS, REFS, REFS)
    assert (found.change, found.low, found.high) == (0.0, 0.0, 0.0)
    assert not found.tells_apart


def test_one_slip_on_a_short_test_is_within_noise_but_an_error_in_every_block_is_not():
    one = change_of(REFS[:2], REFS[:2], [REFS[0], REFS[1].replace("sea", "seat")])
    assert one.change > 0 and one.low == 0.0 and not one.tells_apart
    everywhere = [REFS[0].replace("chair", "cheer").replace("mango", "tango").replace("yellow", "mellow"),
                  REFS[1].replace("sea", "seat")]
    many = change_of(REFS[:2], REFS[:2], everywhere)
    assert many.low > 0 and many.tells_apart


def test_the_interval_is_the_same_on_every_run_and_depends_on_the_draws():
    tuned = [REFS[0].replace("chair", "cheer"), REFS[1].replace("sea", "seat"), ""]
    assert change_of(REFS, REFS, tuned) == change_of(REFS, REFS, tuned)
    assert change_of(REFS, REFS, tuned, level=0.5).high <= change_of(REFS, REFS, tuned).high


def test_no_reference_words_at_all_is_refused():
    with pytest.raises(ValueError, match="no reference words"):
        change_of(["", ""], ["a", ""], ["", "b"])


def test_report_gives_the_interval_in_json_and_a_note_that_says_what_it_means():
    unsure = WerChange(change=0.0077, low=-0.0051, high=0.0203, blocks=41)
    sure = WerChange(change=0.031, low=0.012, high=0.05, blocks=41)
    assert R.wer_change_note(unsure) == (
        "general WER change +0.8 points, 95% interval −0.5 to +2.0 (paired bootstrap over 41 "
        "stretches of up to 10 words): this test cannot tell it from no change")
    assert R.wer_change_note(sure).endswith(": more than this test's noise")
    assert R.wer_change_note(WerChange(-0.0004, -0.01, 0.0, 3)).startswith("general WER change 0.0 points")
    changes = Changes(new=[], fixed=[], wer_change=unsure)
    assert R.wer_change_dict(changes) == {"change": 0.0077, "low": -0.0051, "high": 0.0203, "level": 0.95,
                                          "blocks": 41, "block_words": 10, "rounds": 2000}
    assert R.wer_change_dict(Changes(new=[], fixed=[])) is None
    reports = {"finetuned": EvalReport("tuned", 0.1, None, None, None, None, None)}
    assert R._notes(reports, {}, changes)[-1] == R.wer_change_note(unsure)


def test_evaluation_gives_the_interval_only_when_the_general_set_has_words():
    from vocabtune.evaluation import Clips, general_changes

    hyps = {"base": [REFS[1], ""], "finetuned": [REFS[1].replace("sea", "seat"), "oh hello"]}
    found = general_changes(Clips("data/general", [REFS[1], ""], []), hyps)
    assert found.wer_change.change == pytest.approx(3 / 12) and len(found.new) == 2
    silent = general_changes(Clips("data/general", ["", ""], []), {"base": ["", ""], "finetuned": ["a", ""]})
    assert silent.wer_change is None and len(silent.new) == 1
    assert general_changes(Clips("data/general", [""], []), {"base": [""]}) is None
