"""Reading-script generator: coverage guarantees, disjoint files, determinism, exact
spelling, and never overwriting a script the person may be reading from."""

from __future__ import annotations

import random
import re
import string
from pathlib import Path

import pytest

import prepare_data
from vocabtune.errors import VocabtuneError
from vocabtune.script import (TRAIN_SCRIPT, VALIDATION_SCRIPT, make_scripts, split_frames,
                              write_scripts)
from vocabtune.sentences import SLOTS, TEMPLATES
from vocabtune.vocab import find_term

TRICKY = ["Mixtral 8x7B", "Phi-2", "vLLM", "llama.cpp", "LoRA", "QLoRA", "C++", "KV cache",
          "SOLAR 10.7B", "naïve Bayes", "T-cell", "Yi-34B"]


def random_vocab(n: int, seed: int) -> list[str]:
    """``n`` distinct made-up terms: mixed case, digits, hyphens, dots, multi-word."""
    rng = random.Random(seed)
    terms: dict[str, None] = {}
    while len(terms) < n:
        words = ["".join(rng.choice(string.ascii_letters + string.digits) for _ in range(rng.randint(2, 8)))
                 for _ in range(rng.randint(1, 3))]
        term = rng.choice([" ", "-", "."]).join(words)
        if term.casefold() not in (t.casefold() for t in terms):
            terms[term] = None
    return list(terms)


def occurrences(term: str, sentences: list[str]) -> int:
    return sum(len(find_term(term, s)) for s in sentences)


@pytest.mark.parametrize("terms, repeats", [
    (["Gemma"], 3),                          # tiny: one term, single-slot frames only
    (["Gemma", "Qwen"], 1),
    (TRICKY, 3),
    (random_vocab(40, seed=1), 3),
    (random_vocab(200, seed=2), 3),          # large
    (random_vocab(200, seed=3), 5),
    (["Gemma"], 40),                         # more repeats than there are frames
])
def test_every_term_is_covered(terms: list[str], repeats: int) -> None:
    scripts = make_scripts(terms, train_repeats=repeats, seed=7)
    for term in terms:
        assert occurrences(term, scripts.train) >= repeats, term
        assert occurrences(term, scripts.validation) >= 1, term


@pytest.mark.parametrize("seed", range(5))
def test_no_sentence_in_both_files_and_none_twice(seed: int) -> None:
    for terms in (["Gemma"], TRICKY, random_vocab(200, seed)):
        scripts = make_scripts(terms, seed=seed)
        assert not set(scripts.train) & set(scripts.validation)
        assert len(set(scripts.train)) == len(scripts.train) or len(terms) < 3


def test_frames_are_split_disjointly_with_every_kind_on_both_sides() -> None:
    train, validation = split_frames(random.Random(0))
    for k, group in enumerate(TEMPLATES):
        assert train[k] and validation[k]
        assert sorted(train[k] + validation[k]) == sorted(group)


def test_frames_have_the_right_slots_and_never_glue_onto_a_term() -> None:
    assert len(sum(TEMPLATES, ())) >= 36
    for k, group in enumerate(TEMPLATES, start=1):
        for frame in group:
            assert sorted(re.findall(r"\{(\w)\}", frame)) == list(SLOTS[:k]), frame
            assert not re.search(r"\w\{|\}\w", frame), frame


def test_frames_read_right_for_a_plural_term() -> None:
    """ "café au lait spots was", "Is AirPods related": no singular verb agrees with a slot,
    and no article stands before one ("a Ozempic", "a 5-FU")."""
    for frame in sum(TEMPLATES, ()):
        assert not re.search(r"\{\w\} (is|was|has|does|seems|means|fails|works)\b", frame), frame
        assert not re.search(r"\b(Is|Was|Has|Does) \{", frame), frame
        assert not re.search(r"\b(a|an|A|An) \{", frame), frame


def test_deterministic_with_the_seed() -> None:
    terms = random_vocab(60, seed=4)
    assert make_scripts(terms, seed=3) == make_scripts(terms, seed=3)
    assert make_scripts(terms, seed=3) != make_scripts(terms, seed=4)


def test_terms_spelt_exactly_and_not_twice_in_a_sentence() -> None:
    scripts = make_scripts(TRICKY, seed=0)
    for sentence in scripts.train + scripts.validation:
        named = [t for t in TRICKY if t in sentence]
        assert named, sentence
        assert all(sentence.count(t) == 1 for t in named if not any(
            t != u and t in u for u in TRICKY)), sentence


def test_a_term_with_its_own_end_mark_ends_the_sentence_once() -> None:
    terms = ["Acme Inc.", "Yahoo!", "Who? Me", "St."]
    scripts = make_scripts(terms, train_repeats=10, seed=0)
    sentences = scripts.train + scripts.validation
    assert not [s for s in sentences if re.search(r"[.!?]\.$", s)]
    assert any(s.endswith("Acme Inc.") for s in sentences)
    assert all(occurrences(t, sentences) >= 11 for t in terms)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        make_scripts([], seed=0)
    with pytest.raises(ValueError):
        make_scripts(["Gemma"], train_repeats=0)


# --- files -----------------------------------------------------------------------------

@pytest.fixture
def vocab(tmp_path: Path) -> Path:
    path = tmp_path / "vocab"
    path.mkdir()
    (path / "terms.txt").write_text("Mixtral 8x7B | mixed role\nPhi-2\n# a comment\nvLLM\n", encoding="utf-8")
    return path


def test_write_scripts_files(vocab: Path, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    paths = write_scripts(vocab, recordings, train_repeats=3, seed=0, force=False)
    assert paths == [recordings / TRAIN_SCRIPT, recordings / VALIDATION_SCRIPT]
    train, validation = (p.read_text(encoding="utf-8") for p in paths)
    assert "train.mp3" in train.splitlines()[0] and "naturally" in train.splitlines()[0]
    assert "validation.mp3" in validation.splitlines()[0]
    lines = [line for line in train.splitlines() if re.match(r"\s*\d+\. ", line)]
    assert lines and all(line.strip().startswith(f"{n}. ") for n, line in enumerate(lines, 1))
    for term in ("Mixtral 8x7B", "Phi-2", "vLLM"):
        assert len(find_term(term, train)) >= 3 and len(find_term(term, validation)) >= 1
    assert "mixed role" not in train          # aliases are for suggest, not for reading


@pytest.mark.parametrize("language", ["fr", "es", "Spanish"])
def test_another_language_is_refused_not_given_english_sentences(vocab: Path, tmp_path: Path,
                                                                 language: str) -> None:
    with pytest.raises(VocabtuneError, match="English sentences only") as e:
        write_scripts(vocab, tmp_path / "recordings", language=language)
    assert "your own reading script" in e.value.hint
    assert not (tmp_path / "recordings").exists()
    assert write_scripts(vocab, tmp_path / "en", language="English")


def test_never_overwrites_without_force(vocab: Path, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / VALIDATION_SCRIPT).write_text("my own script\n", encoding="utf-8")
    with pytest.raises(VocabtuneError, match="already exists"):
        write_scripts(vocab, recordings, train_repeats=3, seed=0, force=False)
    assert (recordings / VALIDATION_SCRIPT).read_text(encoding="utf-8") == "my own script\n"
    assert not (recordings / TRAIN_SCRIPT).exists()      # refused before writing anything


def test_force_keeps_a_backup(vocab: Path, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    (recordings / TRAIN_SCRIPT).write_text("my own script\n", encoding="utf-8")
    write_scripts(vocab, recordings, train_repeats=3, seed=0, force=True)
    [backup] = recordings.glob("train-script.*.bak.txt")
    assert backup.read_text(encoding="utf-8") == "my own script\n"
    assert "Phi-2" in (recordings / TRAIN_SCRIPT).read_text(encoding="utf-8")


def test_cli(vocab: Path, tmp_path: Path, capsys) -> None:
    recordings = tmp_path / "recordings"
    args = ["script", "--vocab", str(vocab), "--recordings", str(recordings), "--seed", "1"]
    assert prepare_data.main(args) == 0
    assert f"wrote {recordings / TRAIN_SCRIPT}" in capsys.readouterr().out
    assert prepare_data.main(args) == 1
    assert "--force" in capsys.readouterr().err
    assert prepare_data.main(args + ["--train-repeats", "0", "--force"]) == 1


def test_take_distinct_takes_first_occurrences_and_keeps_the_rest_in_order():
    from collections import Counter, deque

    from vocabtune.script import _take_distinct

    queue = deque(["a", "a", "b", "a", "c", "d"])
    left = Counter(queue)
    assert _take_distinct(queue, left, 3) == ["a", "b", "c"]
    assert list(queue) == ["a", "a", "d"] and left == Counter(queue)
    assert _take_distinct(queue, left, 3) == ["a", "d"] and list(queue) == ["a"]
