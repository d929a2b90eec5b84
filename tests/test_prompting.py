"""Prompt biasing: the vocabulary as Whisper prompt tokens, trimmed to the window."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from vocabtune.config import MAX_TARGET_TOKENS
from vocabtune.prompting import (MAX_PROMPT_TOKENS, format_prompt, log_dropped, max_new_tokens_for,
                                 prompt_ids_for, vocab_prompt_ids)

TERMS = ["Mixtral 8x7B", "Phi-2", "vLLM", "LoRA", "llama.cpp", "GGUF", "Hugging Face"]


@pytest.fixture(scope="module")
def processor(tiny_whisper):
    from transformers import WhisperProcessor

    return WhisperProcessor.from_pretrained(tiny_whisper)


def _text(processor, ids):
    """The prompt's text (Whisper's decode drops everything after <|startofprev|> when
    skipping special tokens, so decode the text ids alone)."""
    return processor.tokenizer.decode(ids[1:])


def test_format_is_a_comma_separated_glossary():
    assert format_prompt(["Mixtral 8x7B", "Phi-2", "vLLM"]) == "Glossary: Mixtral 8x7B, Phi-2, vLLM."
    assert format_prompt([]) == ""
    assert format_prompt(["Yahoo!", "Acme Inc."]) == "Glossary: Yahoo!, Acme Inc."


def test_everything_fits_in_order_and_starts_with_startofprev(processor):
    ids, dropped = vocab_prompt_ids(processor, TERMS)
    assert dropped == []
    assert ids[0] == processor.tokenizer.convert_tokens_to_ids("<|startofprev|>")
    assert _text(processor, ids).strip() == format_prompt(TERMS)
    assert len(ids) <= MAX_PROMPT_TOKENS


def test_trimming_keeps_whole_terms_in_order_within_budget(processor):
    full = len(prompt_ids_for(processor, TERMS))
    budget = full - 4                                    # the last term(s) cannot all fit
    ids, dropped = vocab_prompt_ids(processor, TERMS, max_tokens=budget)
    assert len(ids) <= budget
    assert dropped                                        # something had to go
    kept = [t for t in TERMS if t not in dropped]
    assert _text(processor, ids).strip() == format_prompt(kept)   # whole terms, order kept
    assert dropped == [t for t in TERMS if t in dropped]          # dropped listed in order
    assert len(kept) + len(dropped) == len(TERMS)


def test_a_long_term_that_does_not_fit_does_not_block_shorter_ones(processor):
    long_term = "supercalifragilistic " * 8
    terms = ["vLLM", long_term.strip(), "GGUF"]
    budget = len(prompt_ids_for(processor, ["vLLM", "GGUF"]))
    ids, dropped = vocab_prompt_ids(processor, terms, max_tokens=budget)
    assert dropped == [long_term.strip()]
    assert _text(processor, ids).strip() == format_prompt(["vLLM", "GGUF"])


def test_default_budget_is_whispers_prompt_window(processor):
    many = [f"Term{i}x" for i in range(400)]
    ids, dropped = vocab_prompt_ids(processor, many)
    assert MAX_PROMPT_TOKENS == 223
    assert MAX_PROMPT_TOKENS - 10 < len(ids) <= MAX_PROMPT_TOKENS   # filled, never over
    assert dropped and len(dropped) < len(many)


def test_empty_vocabulary_and_blank_or_repeated_terms(processor):
    assert vocab_prompt_ids(processor, []) == ([], [])
    assert vocab_prompt_ids(processor, ["  "]) == ([], [])
    ids, dropped = vocab_prompt_ids(processor, ["vLLM", "vLLM"])
    assert _text(processor, ids).strip() == "Glossary: vLLM." and dropped == []


def test_nothing_fits_a_tiny_budget(processor):
    ids, dropped = vocab_prompt_ids(processor, TERMS, max_tokens=2)
    assert ids == [] and dropped == TERMS


def test_dropped_terms_are_named_in_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="vocabtune.prompting"):
        log_dropped(["Phi-2", "GGUF"], 5)
        log_dropped([], 7)
    assert len(caplog.records) == 1
    assert "Phi-2, GGUF" in caplog.text and "5 terms" in caplog.text


def test_many_dropped_terms_wrap_without_splitting_a_term(caplog):
    terms = [f"Term-{i} 7B" for i in range(150)]
    with caplog.at_level(logging.WARNING, logger="vocabtune.prompting"):
        log_dropped(terms, 40)
    lines = caplog.records[0].getMessage().splitlines()
    assert "150 did not fit" in lines[0] and len(lines) > 10
    assert all(len(line) <= 96 for line in lines[1:])
    assert all(line.endswith(",") for line in lines[1:-1])          # breaks fall between terms
    names = " ".join(line.strip() for line in lines[1:]).split(", ")
    assert names == terms


@pytest.mark.parametrize("prefix", [1, 4, 30, 227, 300, 447])
def test_prompt_plus_new_tokens_stay_within_448(prefix):
    new = max_new_tokens_for(prefix)
    assert prefix + new <= MAX_TARGET_TOKENS and 1 <= new <= MAX_TARGET_TOKENS // 2


def test_a_full_prompt_generates_without_exceeding_448(tiny_whisper):
    """PITFALLS #4: a 223-token prompt with our max_new_tokens must not raise, short-form
    (decode_batch) or long-form (transcribe_array), and the prompt is not in the text."""
    import torch

    from vocabtune.modelio import load_whisper
    from vocabtune.transcribe import Decoding, decode_batch, generate_segments

    torch.set_num_threads(1)
    loaded = load_whisper(str(tiny_whisper), device="cpu", language="en")
    ids, _ = vocab_prompt_ids(loaded.processor, [f"Term{i}x" for i in range(400)])
    clip = np.zeros(16_000, dtype=np.float32)
    texts = decode_batch(loaded, [clip], language="en", prompt_ids=ids, progress=False)
    assert "Glossary" not in texts[0]
    segments = generate_segments(loaded, np.zeros(16_000 * 35, dtype=np.float32),
                                 Decoding("en", tuple(ids)))
    for seg in segments:
        assert "Glossary" not in loaded.processor.tokenizer.decode(seg["tokens"])
