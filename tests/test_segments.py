"""Packing cues into <= 30 s chunks: hand-made cases, random cue lists, and the real VTTs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from vocabtune.config import MAX_CHUNK_S
from vocabtune.errors import VocabtuneError
from vocabtune.schema import Chunk, Cue
from vocabtune.segments import hold_out, pack_cues


def cues_at(*spans: tuple[float, float], texts: list[str] | None = None) -> list[Cue]:
    texts = texts or [f"cue {i}" for i in range(len(spans))]
    return [Cue(s, e, t, line=3 + 3 * i) for i, ((s, e), t) in enumerate(zip(spans, texts))]


# --- hand-made cases --------------------------------------------------------------------

def test_short_cues_share_one_chunk_spanning_first_start_to_last_end():
    chunks = pack_cues(cues_at((1.0, 4.0), (4.5, 9.0), (10.0, 12.5)), "a.mp3")
    assert len(chunks) == 1
    assert (chunks[0].start, chunks[0].end) == (1.0, 12.5)
    assert chunks[0].text == "cue 0 cue 1 cue 2"
    assert chunks[0].source == "a.mp3"


def test_new_chunk_starts_when_next_cue_would_pass_the_limit():
    chunks = pack_cues(cues_at((0.0, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, 30.001)), "a.mp3")
    assert [(c.start, c.end) for c in chunks] == [(0.0, 30.0), (30.0, 30.001)]


def test_a_chunk_of_exactly_max_s_is_allowed():
    chunks = pack_cues(cues_at((0.0, 29.0), (29.5, 30.0)), "a.mp3")
    assert len(chunks) == 1 and chunks[0].end - chunks[0].start == 30.0


def test_custom_limit():
    chunks = pack_cues(cues_at((0, 4), (4, 8), (8, 12)), "a.mp3", max_s=8)
    assert [len(c.cues) for c in chunks] == [2, 1]


def test_cue_over_the_limit_is_an_error_naming_file_and_line():
    cues = cues_at((0.0, 5.0), (5.0, 36.0))
    with pytest.raises(VocabtuneError) as err:
        pack_cues(cues, "talk.mp3", caption_file="recordings/talk.vtt")
    assert err.value.file == "recordings/talk.vtt" and err.value.line == 6
    assert "31.0 s" in str(err.value) and "split this cue" in str(err.value)


def test_error_names_the_source_when_no_caption_file_is_given():
    with pytest.raises(VocabtuneError) as err:
        pack_cues(cues_at((0.0, 31.0)), "talk.mp3")
    assert err.value.file == "talk.mp3" and err.value.line == 3


@pytest.mark.parametrize("spans, what", [
    ([(5.0, 6.0), (4.0, 7.0)], "out of order"),
    ([(0.0, 10.0), (2.0, 5.0)], "inside the previous cue"),
    ([(3.0, 2.999)], "not after its start"),
    ([(-1.0, 2.0)], "not after its start"),
])
def test_malformed_cues_are_errors(spans, what):
    with pytest.raises(VocabtuneError, match=what):
        pack_cues(cues_at(*spans), "a.mp3")


def test_zero_length_cue_is_left_out_and_ends_the_chunk():
    cues = cues_at((0, 2), (3, 3), (3, 6), texts=["one", "two", "three"])
    chunks = pack_cues(cues, "a.mp3")
    assert [c.text for c in chunks] == ["one", "three"]


def test_empty_cue_is_dropped_and_its_audio_is_in_no_chunk():
    cues = cues_at((0, 2), (2, 4), (4, 6), texts=["one", "  ", "three"])
    chunks = pack_cues(cues, "a.mp3")
    assert [c.text for c in chunks] == ["one", "three"]
    assert [(c.start, c.end) for c in chunks] == [(0, 2), (4, 6)]


def test_overlap_inside_a_chunk_keeps_both_cues_whole():
    chunks = pack_cues(cues_at((0.0, 5.05), (5.0, 9.0)), "a.mp3")
    assert len(chunks) == 1 and (chunks[0].start, chunks[0].end) == (0.0, 9.0)


def test_overlap_across_a_chunk_boundary_is_clipped_so_no_audio_is_used_twice():
    chunks = pack_cues(cues_at((0.0, 20.05), (20.0, 29.0)), "a.mp3", max_s=25)
    assert len(chunks) == 2
    assert chunks[0].end == 20.05 and chunks[1].start == 20.05
    assert chunks[1].cues[0].line == 6 and chunks[1].cues[0].text == "cue 1"


def test_no_cues_give_no_chunks():
    assert pack_cues([], "a.mp3") == []


# --- property-style tests over random cue lists ------------------------------------------

def random_cues(rng: random.Random) -> list[Cue]:
    """Cue lists like a corrected VTT: ms times, gaps, a few tiny overlaps and empty cues,
    durations up to the limit (so boundary cases occur)."""
    cues, t = [], rng.uniform(0, 3)
    for i in range(rng.randint(0, 60)):
        duration = rng.choice([rng.uniform(0.2, 8), rng.uniform(8, MAX_CHUNK_S)])
        start = round(t, 3)
        end = round(start + duration, 3)
        empty = rng.random() < 0.05
        cues.append(Cue(start, end, "" if empty else f"w{i} " * rng.randint(1, 4), line=2 + 3 * i))
        gap = rng.choice([0.0, rng.uniform(0, 2), -rng.uniform(0, 0.15)])
        t = max(end + gap, start + 0.001)
    return cues


@pytest.mark.parametrize("seed", range(300))
def test_packing_properties_on_random_cue_lists(seed):
    rng = random.Random(seed)
    cues = random_cues(rng)
    max_s = rng.choice([MAX_CHUNK_S, MAX_CHUNK_S, 10.0]) if all(c.duration <= 10 for c in cues) else MAX_CHUNK_S
    chunks = pack_cues(cues, "r.mp3", max_s=max_s)
    spoken = [c for c in cues if c.text.strip()]
    packed = [c for chunk in chunks for c in chunk.cues]
    # no cue lost, split or repeated; order kept (starts may be clipped at a boundary)
    assert [(c.line, c.text, c.end) for c in packed] == [(c.line, c.text, c.end) for c in spoken]
    assert " ".join(ch.text for ch in chunks) == " ".join(c.text for c in spoken)
    for ch in chunks:
        assert 0 < ch.end - ch.start <= max_s + 1e-6
        assert all(a.start <= b.start for a, b in zip(ch.cues, ch.cues[1:]))
    # consecutive chunks are in order and never share audio
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
    # an empty cue's time never lies inside a chunk
    for gap in (c for c in cues if not c.text.strip()):
        assert not any(ch.start < gap.start and gap.end < ch.end for ch in chunks)


@pytest.mark.parametrize("seed", range(100))
def test_packing_is_greedy(seed):
    """A chunk ends only when the next cue would not fit (or an empty cue intervenes)."""
    cues = [c for c in random_cues(random.Random(seed)) if c.text]
    chunks = pack_cues(cues, "r.mp3")
    for a, b in zip(chunks, chunks[1:]):
        assert b.cues[0].end - a.start > MAX_CHUNK_S


# --- hold_out ----------------------------------------------------------------------------

def make_chunks(n: int) -> list[Chunk]:
    return [Chunk("r.mp3", (Cue(10.0 * i, 10.0 * i + 5, f"c{i}"),)) for i in range(n)]


@pytest.mark.parametrize("n", [2, 3, 7, 10, 50])
@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.99])
def test_hold_out_keeps_whole_chunks_and_at_least_one_each(n, fraction):
    chunks = make_chunks(n)
    train, val = hold_out(chunks, fraction, seed=1)
    assert len(train) >= 1 and len(val) >= 1
    assert sorted(train + val, key=lambda c: c.start) == chunks
    assert train == sorted(train, key=lambda c: c.start) and val == sorted(val, key=lambda c: c.start)
    if 1 <= round(n * fraction) <= n - 1:
        assert len(val) == round(n * fraction)


def test_hold_out_is_deterministic_per_seed():
    chunks = make_chunks(40)
    assert hold_out(chunks, 0.25, seed=3) == hold_out(chunks, 0.25, seed=3)
    assert hold_out(chunks, 0.25, seed=3) != hold_out(chunks, 0.25, seed=4)


def texts_chunks(*texts: str) -> list[Chunk]:
    return [Chunk("r.mp3", (Cue(10.0 * i, 10.0 * i + 5, t),)) for i, t in enumerate(texts)]


@pytest.mark.parametrize("seed", range(8))
def test_hold_out_puts_every_term_it_can_into_validation(seed):
    """Voice memos without a validation recording: a random tenth of 50 memos held 9 of 40
    terms, so recall could not be measured on the rest. Each term here is in two of twenty
    chunks; four held out carry all four terms, and train keeps one of each."""
    terms = ["LoRA", "GGUF", "vLLM", "Qwen"]
    texts = [f"about {t} again" for t in terms for _ in range(2)] + [f"plain {i}" for i in range(12)]
    chunks = texts_chunks(*random.Random(seed).sample(texts, len(texts)))
    train, val = hold_out(chunks, 0.2, seed=seed, terms=terms)
    assert len(val) == 4
    for term in terms:
        assert any(term in c.text for c in val) and any(term in c.text for c in train)


def test_hold_out_never_takes_a_term_s_only_train_occurrence():
    """A term said once can be learnt or measured, not both: it stays in train, and the
    share is filled with chunks that hold no last occurrence."""
    chunks = texts_chunks("only LoRA here", "GGUF one", "GGUF two", "plain", "more plain")
    for seed in range(6):
        train, val = hold_out(chunks, 0.4, seed=seed, terms=["LoRA", "GGUF"])
        assert any("LoRA" in c.text for c in train)
        assert sum("GGUF" in c.text for c in val) == 1 and len(val) == 2


@pytest.mark.parametrize("n, fraction, what", [
    (1, 0.1, "only 1 chunk"), (0, 0.1, "only 0 chunk"), (5, 0.0, "not between"),
    (5, 1.0, "not between"), (5, -0.2, "not between"),
])
def test_hold_out_errors(n, fraction, what):
    with pytest.raises(VocabtuneError, match=what):
        hold_out(make_chunks(n), fraction)


# --- the real corrected captions -----------------------------------------------------------

def read_cues(path: Path) -> list[Cue]:
    """Through vocabtune.captions when it exists; webvtt-py directly otherwise."""
    try:
        from vocabtune.captions import read_vtt
    except ImportError:
        import webvtt
        return [Cue(c.start_time.in_milliseconds() / 1000, c.end_time.in_milliseconds() / 1000,
                    " ".join(c.text.split()))
                for c in webvtt.read(str(path)).captions]
    result = read_vtt(path)
    return list(result[0] if isinstance(result, tuple) else result)


@pytest.mark.parametrize("name", ["train", "validation"])
def test_real_cues_pack_without_loss(llm_lingo, name):
    cues = read_cues(llm_lingo / f"{name}.vtt")
    assert cues
    chunks = pack_cues(cues, f"{name}.mp3")
    assert [c for ch in chunks for c in ch.cues] == [c for c in cues if c.text]
    assert all(ch.end - ch.start <= MAX_CHUNK_S for ch in chunks)
    assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:]))
    assert len(chunks) < len(cues)       # short sentences are packed together
