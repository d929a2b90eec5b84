"""Training targets in Whisper's format, checked token by token with the tiny tokenizer."""

from __future__ import annotations

import pytest

from vocabtune.config import MAX_TARGET_TOKENS
from vocabtune.errors import VocabtuneError
from vocabtune.targets import (IGNORE_INDEX, MAX_PROMPT_TOKENS, TargetCue, TokenLayout,
                               build_target, chosen)


@pytest.fixture(scope="module")
def tok(tiny_whisper):
    from transformers import WhisperTokenizer

    return WhisperTokenizer.from_pretrained(tiny_whisper)


@pytest.fixture(scope="module")
def tok_en(tiny_whisper_en):
    from transformers import WhisperTokenizer

    return WhisperTokenizer.from_pretrained(tiny_whisper_en)


def encoder(tokenizer):
    return lambda text: tokenizer.encode(text, add_special_tokens=False)


def show(tokenizer, ids) -> str:
    """Readable form: special and timestamp tokens by name, -100 as '_'."""
    return "".join("_" if i == IGNORE_INDEX else tokenizer.decode([i], decode_with_timestamps=True)
                   for i in ids)


def layout(tokenizer, multilingual=True):
    return TokenLayout.from_tokenizer(tokenizer, "en", multilingual)


def test_plain_multilingual(tok):
    t = build_target(layout(tok), encoder(tok), "hello world")
    assert show(tok, t.decoder_input_ids) == \
        "<|startoftranscript|><|en|><|transcribe|><|notimestamps|> hello world"
    assert show(tok, t.labels) == "<|en|><|transcribe|><|notimestamps|> hello world<|endoftext|>"
    # no leading <|startoftranscript|> in the labels: the decoder is fed it (PITFALLS #8)
    assert t.labels[0] != tok.convert_tokens_to_ids("<|startoftranscript|>")
    assert len(t.labels) == len(t.decoder_input_ids)
    assert list(t.decoder_input_ids[1:]) == list(t.labels[:-1])   # teacher forcing alignment


def test_plain_english_only_has_no_language_or_task(tok_en):
    t = build_target(layout(tok_en, multilingual=False), encoder(tok_en), "hello world")
    assert show(tok_en, t.labels) == "<|notimestamps|> hello world<|endoftext|>"
    assert show(tok_en, t.decoder_input_ids) == "<|startoftranscript|><|notimestamps|> hello world"


def test_english_only_language_setting_is_ignored_not_looked_up(tok_en):
    # tiny.en has no <|en|> token at all; asking for German must not invent one either
    lay = TokenLayout.from_tokenizer(tok_en, "de", multilingual=False)
    assert lay.task == ()


def test_unknown_language_is_a_clear_error(tok):
    with pytest.raises(VocabtuneError, match="language 'klingon'"):
        TokenLayout.from_tokenizer(tok, "klingon", True)


def test_timestamped_targets_per_cue_quantised_to_20ms(tok):
    cues = [TargetCue(0.0, 2.409, "hello world"), TargetCue(2.431, 5.0, "the lazy dog")]
    t = build_target(layout(tok), encoder(tok), "hello world the lazy dog", cues=cues)
    assert show(tok, t.labels) == ("<|en|><|transcribe|><|0.00|> hello world<|2.40|>"
                                   "<|2.44|> the lazy dog<|5.00|><|endoftext|>")
    assert tok.convert_tokens_to_ids("<|notimestamps|>") not in t.labels


def test_timestamps_are_clamped_to_the_30s_window(tok):
    t = build_target(layout(tok), encoder(tok), "x", cues=[TargetCue(-0.01, 30.04, "hello")])
    assert show(tok, t.labels).startswith("<|en|><|transcribe|><|0.00|> hello<|30.00|>")


def test_prompt_is_fed_but_masked_in_the_loss(tok):
    t = build_target(layout(tok), encoder(tok), "the lazy dog", previous="hello world")
    assert show(tok, t.decoder_input_ids) == ("<|startofprev|> hello world<|startoftranscript|>"
                                              "<|en|><|transcribe|><|notimestamps|> the lazy dog")
    n_prompt = 1 + len(tok.encode(" hello world", add_special_tokens=False))
    # every position up to and including the one that predicts <|startoftranscript|> is masked
    assert t.labels[:n_prompt] == (IGNORE_INDEX,) * n_prompt
    assert show(tok, t.labels[n_prompt:]) == \
        "<|en|><|transcribe|><|notimestamps|> the lazy dog<|endoftext|>"
    assert len(t.labels) == len(t.decoder_input_ids)


def test_prompt_with_timestamps(tok):
    t = build_target(layout(tok), encoder(tok), "dog", cues=[TargetCue(0.5, 1.0, "dog")],
                     previous="fox")
    assert show(tok, t.decoder_input_ids) == \
        "<|startofprev|> fox<|startoftranscript|><|en|><|transcribe|><|0.50|> dog<|1.00|>"


def test_long_prompt_keeps_its_most_recent_tokens(tok):
    previous = " ".join(["fox"] * 300) + " hello world"
    t = build_target(layout(tok), encoder(tok), "dog", previous=previous)
    prompt = t.decoder_input_ids[:t.decoder_input_ids.index(tok.convert_tokens_to_ids("<|startoftranscript|>"))]
    assert len(prompt) == 1 + MAX_PROMPT_TOKENS
    assert show(tok, prompt).endswith(" fox fox hello world")


def test_prompt_is_trimmed_to_fit_448_before_any_error(tok):
    text = " ".join(["the"] * 400)      # " the" is one token: 404 label tokens
    previous = "hello " + " ".join(["model"] * 200)     # " model" is one token too
    t = build_target(layout(tok), encoder(tok), text, previous=previous)
    assert len(t.decoder_input_ids) == MAX_TARGET_TOKENS
    # the oldest words go first (" hello" did not fit), as Whisper trims its context
    assert show(tok, t.decoder_input_ids).startswith("<|startofprev|> model model")
    assert t.labels.count(IGNORE_INDEX) == MAX_TARGET_TOKENS - 404


def test_no_room_means_no_prompt(tok):
    text = " ".join(["the"] * (MAX_TARGET_TOKENS - 4))    # + 3 task tokens + eot = 448
    t = build_target(layout(tok), encoder(tok), text, previous="hello")
    assert len(t.labels) == MAX_TARGET_TOKENS
    assert IGNORE_INDEX not in t.labels


def test_over_448_tokens_is_an_error_naming_the_chunk(tok):
    text = " ".join(["the"] * (MAX_TARGET_TOKENS - 3))    # 449 with task tokens + eot
    with pytest.raises(VocabtuneError) as info:
        build_target(layout(tok), encoder(tok), text, where=("talk.mp3", 75.5))
    err = info.value
    assert err.file == "talk.mp3"
    assert "1:15.50" in err.message and "449 tokens" in err.message and "448" in err.message
    assert "shorter" in err.hint
    assert str(err).startswith("talk.mp3: ")


def test_shares_are_exact_deterministic_and_vary_by_epoch():
    picks = [chosen(10, 0.3, seed=1, epoch=e, stream="prompt") for e in range(6)]
    assert all(len(p) == 3 for p in picks)
    assert picks[0] == chosen(10, 0.3, seed=1, epoch=0, stream="prompt")
    assert len(set(picks)) > 1
    assert chosen(10, 0.3, seed=1, epoch=0, stream="timestamp") != picks[0] or \
        chosen(10, 0.3, seed=2, epoch=0, stream="prompt") != picks[0]
    assert chosen(4, 0.0, seed=1, epoch=0, stream="x") == frozenset()
    assert chosen(4, 1.0, seed=1, epoch=0, stream="x") == frozenset(range(4))
    with pytest.raises(VocabtuneError, match="between 0 and 1"):
        chosen(4, 1.5, seed=1, epoch=0, stream="timestamp")
