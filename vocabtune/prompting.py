"""The person's vocabulary as a Whisper prompt ("prompt biasing").

Whisper reads a prompt as the text that came before the window, so spellings seen there
are strongly preferred ("vLLM", not "BLLM"). On llm-lingo with whisper-base this alone took
term recall from 24% to 71% (issue 4). Its limits: the prompt holds at most
``max_target_positions // 2 - 1`` tokens (223), as in Whisper's own decoder
(openai/whisper ``decoding.py`` keeps ``n_ctx // 2 - 1`` prompt tokens), and every window
must carry it. So we keep whole terms that fit and report the rest by name.

The format is a plain comma-separated list after a short label: a list reads like a
glossary line the speaker might have said before, costs one comma token per term, and
keeps every term's spelling and case exactly as in ``vocab/``.
"""

from __future__ import annotations

import logging
import textwrap
from typing import Any, Sequence

from .config import MAX_TARGET_TOKENS

log = logging.getLogger(__name__)
PROMPT_LABEL = "Glossary:"             # the words before the list
MAX_PROMPT_TOKENS = MAX_TARGET_TOKENS // 2 - 1   # 223: Whisper's prompt window


def format_prompt(terms: Sequence[str]) -> str:
    """``"Glossary: Mixtral 8x7B, Phi-2, vLLM."``; empty string for no terms. A last term
    with its own end mark ends the list ("… Acme Inc.", not "Acme Inc.."): Whisper takes
    the prompt as text it wrote before, and should not see a doubled full stop there."""
    if not terms:
        return ""
    text = f"{PROMPT_LABEL} {', '.join(terms)}"
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _tokenizer(processor: Any) -> Any:
    """Accept a WhisperProcessor or a bare Whisper tokenizer."""
    return getattr(processor, "tokenizer", processor)


def prompt_ids_for(processor: Any, terms: Sequence[str]) -> list[int]:
    """Token ids of the formatted prompt, starting with ``<|startofprev|>`` as ``generate``
    expects; ``[]`` for no terms.

    This is what ``tokenizer.get_prompt_ids`` does, written out because its special-token
    guard assumes special tokens have the highest ids (``x >= all_special_ids[0]``), true
    of OpenAI's vocabulary but not of every Whisper tokenizer (our offline test tokenizer
    puts ``<|endoftext|>`` at id 0, so every prompt would be refused).
    """
    if not terms:
        return []
    tok = _tokenizer(processor)
    text_ids = tok(" " + format_prompt(terms).strip(), add_special_tokens=False)["input_ids"]
    if set(text_ids) & set(tok.all_special_ids):
        raise ValueError("prompt text encodes to a special token")   # filtered out before
    return [int(tok.convert_tokens_to_ids("<|startofprev|>"))] + [int(i) for i in text_ids]


def _usable(term: str) -> bool:
    """Blank terms say nothing; text like ``<|en|>`` would become a control token."""
    return bool(term.strip()) and "<|" not in term


def vocab_prompt_ids(processor: Any, terms: Sequence[str],
                     max_tokens: int | None = None) -> tuple[list[int], list[str]]:
    """The vocabulary as Whisper prompt ids (including ``<|startofprev|>``), at most
    ``max_tokens`` long (default 223), and the terms that did not fit.

    Terms are kept whole and in vocabulary order. A term that does not fit is skipped, but
    later, shorter terms may still fit (more terms biased is better than a strict prefix).
    The length is measured on the whole encoded prompt each time, because BPE merges across
    the ", " between terms make per-term counts inexact.
    """
    budget = MAX_PROMPT_TOKENS if max_tokens is None else max_tokens
    kept: list[str] = []
    dropped: list[str] = []
    ids: list[int] = []
    for term in dict.fromkeys(t for t in terms if t.strip()):   # unique, order kept
        if not _usable(term):
            dropped.append(term)
            continue
        candidate = prompt_ids_for(processor, kept + [term])
        if len(candidate) <= budget:
            kept.append(term)
            ids = candidate
        else:
            dropped.append(term)
    return ids, dropped


NBSP = "\u00a0"           # not whitespace to textwrap


def log_dropped(dropped: Sequence[str], kept_count: int) -> None:
    """One warning naming every term that did not fit, so the person knows which terms
    get no help from the prompt (and can move the important ones up the vocab file). The
    names are wrapped under the message: a vocabulary of hundreds would be one huge line."""
    if dropped:
        glued = ", ".join(t.replace(" ", NBSP) for t in dropped)     # lines break between terms
        names = textwrap.fill(glued, width=96, initial_indent="  ", subsequent_indent="  ",
                              break_on_hyphens=False, break_long_words=False).replace(NBSP, " ")
        log.warning("prompt holds %d terms; %d did not fit Whisper's %d-token prompt window "
                    "and get no prompt help:\n%s", kept_count, len(dropped), MAX_PROMPT_TOKENS, names)


def max_new_tokens_for(prefix_len: int, max_positions: int = MAX_TARGET_TOKENS) -> int:
    """Tokens generate may add after ``prefix_len`` decoder input tokens (prompt + start,
    language, task tokens): prompt + new tokens must stay within 448 (PITFALLS #4). Also
    at most 224 per window, Whisper's own ``sample_len``: a 30 s window never needs more,
    and a hallucination loop then costs half as much."""
    return max(1, min(max_positions // 2, max_positions - prefix_len))
