"""term_weights: which label tokens are a term's, on hand-made labels and on real targets
built with the tiny byte-level BPE tokenizer (the same pre-tokenizer as Whisper's)."""

from __future__ import annotations

import pytest

from vocabtune.targets import IGNORE_INDEX, TargetCue, TokenLayout, build_target
from vocabtune.term_weights import label_weights, term_token_runs

TERMS = ["Mixtral 8x7B", "LoRA", "GGUF", "Phi-2", "vLLM"]


def test_weights_on_hand_made_labels():
    labels = [IGNORE_INDEX, 5, 1, 2, 3, 9, 1, 2, 3, 1, 2, 7]
    assert label_weights(labels, [(1, 2, 3)], 0.2) == pytest.approx(
        (0.0, 0.2, 1, 1, 1, 0.2, 1, 1, 1, 0.2, 0.2, 0.2))
    # several runs, overlapping ones both marked
    assert label_weights([4, 1, 2, 3, 4], [(1, 2), (2, 3)], 0.5) == pytest.approx((0.5, 1, 1, 1, 0.5))
    # a chunk without terms: every word at full weight, masked positions 0
    assert label_weights([IGNORE_INDEX, 4, 5], [], 0.2) == (0.0, 1.0, 1.0)
    # weight 0: only the terms train
    assert label_weights([4, 1, 2], [(1, 2)], 0.0) == (0.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def tok(tiny_whisper):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_whisper)


def encoder(tok):
    return lambda text: tok.encode(text, add_special_tokens=False)


def full_weight_text(tok, labels, weights) -> str:
    """The full-weight stretches of a target, decoded, one space between stretches."""
    stretches, current = [], []
    for lab, w in zip(labels, weights):
        if w == 1.0 and lab >= 0:
            current.append(lab)
        elif current:
            stretches, current = stretches + [tok.decode(current).strip()], []
    return " ".join(stretches + ([tok.decode(current).strip()] if current else []))


def test_runs_are_the_terms_as_written_with_and_without_a_space(tok):
    encode = encoder(tok)
    runs = term_token_runs("Serve lora adapters with vLLM.", TERMS, encode)
    assert set(runs) == {tuple(encode(" lora")), tuple(encode("lora")), tuple(encode(" vLLM")),
                         tuple(encode("vLLM"))}          # the reference's own spelling
    assert term_token_runs("The quick brown fox.", TERMS, encode) == ()
    assert term_token_runs("A line\nbreak inside Mixtral\n8x7B.", TERMS, encode) == tuple(sorted(
        {tuple(encode(" Mixtral 8x7B")), tuple(encode("Mixtral 8x7B"))}))


@pytest.mark.parametrize("text, expected", [
    ("I converted the model to GGUF and ran Mixtral 8x7B.", "GGUF Mixtral 8x7B"),
    ("LoRA adapters (Phi-2) are small.", "LoRA Phi-2"),       # first word, after a bracket
    ("A vLLM's queue.", "vLLM"),                                # a clitic glued on
    ("Not a term: vLLMs or LoRAs.", ""),                        # sub-word: not a term
])
def test_exactly_the_term_tokens_get_full_weight_in_plain_targets(tok, text, expected):
    encode = encoder(tok)
    layout = TokenLayout.from_tokenizer(tok, "en", multilingual=True)
    target = build_target(layout, encode, text)
    weights = label_weights(target.labels, term_token_runs(text, TERMS, encode), 0.2)
    if not expected:                                            # no term: a plain chunk
        assert set(weights) == {1.0}
        return
    assert full_weight_text(tok, target.labels, weights).split() == expected.split()
    assert weights[-1] == 0.2                                   # <|endoftext|> is context too


def test_timestamped_and_prompted_targets_weight_the_same_term_tokens(tok):
    encode = encoder(tok)
    layout = TokenLayout.from_tokenizer(tok, "en", multilingual=True)
    text = "Mixtral 8x7B is open. The quick brown fox uses LoRA."
    cues = (TargetCue(0.0, 2.0, "Mixtral 8x7B is open."), TargetCue(2.0, 4.0, "The quick brown fox uses LoRA."))
    runs = term_token_runs(text, TERMS, encode)
    target = build_target(layout, encode, text, cues=cues, previous="Earlier we used GGUF files.")
    weights = label_weights(target.labels, runs, 0.2)
    assert full_weight_text(tok, target.labels, weights).split() == ["Mixtral", "8x7B", "LoRA"]
    # the prompt carries no loss, even where it holds a term ("GGUF")
    n_prompt = sum(1 for lab in target.labels if lab == IGNORE_INDEX)
    assert n_prompt > 1 and set(weights[:n_prompt]) == {0.0}
