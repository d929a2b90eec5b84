"""bench/suggest_quality.py: what the reference says is counted as the term metrics count it."""

from __future__ import annotations

import suggest_quality  # bench/ is on sys.path (tests/conftest.py)


def test_only_real_occurrences_are_counted_as_terms_to_fix() -> None:
    """An everyday word ("let's go" for the term "Go") or a shorter term inside a longer
    one ("C" in "C++") is no term the base missed: counted, it lowered recall."""
    text = "Let's go, the C++ build is done."
    tally = suggest_quality.score_block(text, text, [], ["Go", "C", "C++"], "x.vtt:1")
    assert tally.missed == 0
    tally = suggest_quality.score_block("Let's go, the c++ build.", "Let's go, the C++ build.",
                                        [], ["Go", "C", "C++"], "x.vtt:1")
    assert tally.missed == 1 and tally.unfixed == ["x.vtt:1: C++ x1   (base: Let's go, the c++ build.)"]
