"""Whisper training targets (decoder inputs + labels) for one chunk, in Whisper's own format.

Pure: it takes an ``encode`` function (text -> token ids) and the ids of Whisper's special
tokens, so it is tested with the tiny tokenizer and no model. Three shapes, as Whisper was
trained (Radford et al. 2022, fig. 1):

* plain:       <|sot|> <|en|> <|transcribe|> <|notimestamps|>  text  <|eot|>
* timestamped: <|sot|> <|en|> <|transcribe|> <|t0|> cue 1 <|t1|> <|t2|> cue 2 <|t3|> <|eot|>
  (cue times relative to the chunk start, quantised to 0.02 s; no <|notimestamps|>)
* prompted:    <|startofprev|> previous chunk's text  then either of the above.

English-only models (``*.en``) have no language or task token (PITFALLS #1).

Decoder inputs and labels are built explicitly, not left to the model: transformers'
Whisper shifts ``labels`` right to make decoder inputs only when none are given, and that
shift would turn the masked (-100) prompt positions into padding, so the model would never
see the prompt it is meant to be conditioned on. Here ``decoder_input_ids = seq[:-1]`` and
``labels = seq[1:]`` with every position that predicts a prompt token or <|sot|> masked to
-100 (Whisper computes no loss on the prompt). Without a prompt this equals the model's own
shift of labels that lack the leading <|sot|> (PITFALLS #8).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Sequence

from .config import MAX_CHUNK_S, MAX_TARGET_TOKENS, TIMESTAMP_STEP_S
from .errors import VocabtuneError

IGNORE_INDEX = -100                             # label value CrossEntropyLoss skips
MAX_PROMPT_TOKENS = MAX_TARGET_TOKENS // 2 - 1  # 223 text tokens, as OpenAI's decoder keeps
LAST_TIMESTAMP = round(MAX_CHUNK_S / TIMESTAMP_STEP_S)  # index of <|30.00|>

Encode = Callable[[str], list[int]]


@dataclass(frozen=True)
class TargetCue:
    """One cue inside a chunk; times in seconds from the chunk's start."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class TokenLayout:
    """Ids of Whisper's special tokens for one tokenizer and language."""

    sot: int                    # <|startoftranscript|>
    eot: int                    # <|endoftext|>
    prev: int                   # <|startofprev|>
    no_timestamps: int          # <|notimestamps|>
    timestamp_begin: int        # <|0.00|>; <|k*0.02|> is timestamp_begin + k
    task: tuple[int, ...]       # (<|en|>, <|transcribe|>) or () for English-only models

    @classmethod
    def from_tokenizer(cls, tokenizer, language: str, multilingual: bool) -> "TokenLayout":
        """Read the ids from ``tokenizer`` (the model's own one, PITFALLS #12)."""
        ids = tokenizer.convert_tokens_to_ids
        task: tuple[int, ...] = ()
        if multilingual:
            lang = ids(f"<|{language_code(language)}|>")
            if lang == tokenizer.unk_token_id:
                raise VocabtuneError(f"language {language!r} is not one Whisper knows",
                                     hint="pass an ISO code such as en, de, fr with --language")
            task = (lang, ids("<|transcribe|>"))
        layout = cls(sot=ids("<|startoftranscript|>"), eot=ids("<|endoftext|>"),
                     prev=ids("<|startofprev|>"), no_timestamps=ids("<|notimestamps|>"),
                     timestamp_begin=ids("<|0.00|>"), task=task)
        if ids("<|%.2f|>" % MAX_CHUNK_S) != layout.timestamp_begin + LAST_TIMESTAMP:
            raise VocabtuneError("this tokenizer has no Whisper timestamp tokens",
                                 hint="use the tokenizer saved with the Whisper model")
        return layout

    def timestamp(self, seconds: float) -> int:
        """Token of the nearest 0.02 s step, clamped to the 30 s window."""
        index = round(seconds / TIMESTAMP_STEP_S)
        return self.timestamp_begin + min(max(index, 0), LAST_TIMESTAMP)


@dataclass(frozen=True)
class Target:
    decoder_input_ids: tuple[int, ...]
    labels: tuple[int, ...]     # IGNORE_INDEX where no loss is taken


def language_code(language: str) -> str:
    """``english`` -> ``en``; codes pass through (Whisper's tokens use codes)."""
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    key = language.strip().lower()
    return TO_LANGUAGE_CODE.get(key, key)


def is_english(language: str) -> bool:
    """"en", "EN", "English": what Whisper's English token and English-only models take."""
    return language_code(language) == "en"


def text_ids(encode: Encode, text: str) -> list[int]:
    """Tokens of ``text`` with one leading space, the form Whisper itself emits (" Hello")."""
    return encode(" " + " ".join(text.split()))


def transcript_ids(layout: TokenLayout, encode: Encode, text: str,
                   cues: Sequence[TargetCue] | None) -> list[int]:
    """Everything after <|sot|>: task tokens, then plain text (``cues`` None) or timed cues,
    then <|eot|>."""
    ids = list(layout.task)
    if cues is None:
        ids += [layout.no_timestamps, *text_ids(encode, text)]
    else:
        for cue in cues:
            ids += [layout.timestamp(cue.start), *text_ids(encode, cue.text),
                    layout.timestamp(cue.end)]
    return ids + [layout.eot]


def prompt_ids(layout: TokenLayout, encode: Encode, previous: str, room: int) -> list[int]:
    """<|startofprev|> and the *last* tokens of the previous text that fit in ``room``
    (Whisper keeps the most recent context); empty when not even one token fits."""
    keep = min(room - 1, MAX_PROMPT_TOKENS)
    tokens = text_ids(encode, previous) if previous.strip() else []
    if keep < 1 or not tokens:
        return []
    return [layout.prev, *tokens[-keep:]]


def build_target(layout: TokenLayout, encode: Encode, text: str, *,
                 cues: Sequence[TargetCue] | None = None, previous: str | None = None,
                 where: tuple[str, float] = ("?", 0.0)) -> Target:
    """One training target. ``cues`` given -> timestamped; ``previous`` given -> prompted
    (trimmed from the left to fit). ``where`` = (source file, chunk start in s) for errors."""
    body = transcript_ids(layout, encode, text, cues)
    if len(body) > MAX_TARGET_TOKENS:
        raise too_long_error(len(body), where, timestamps=cues is not None)
    prompt = prompt_ids(layout, encode, previous, MAX_TARGET_TOKENS - len(body)) if previous else []
    sequence = [*prompt, layout.sot, *body]
    labels = [IGNORE_INDEX] * len(prompt) + body
    return Target(decoder_input_ids=tuple(sequence[:-1]), labels=tuple(labels))


def too_long_error(n_tokens: int, where: tuple[str, float], *, timestamps: bool) -> VocabtuneError:
    source, start = where
    minutes, seconds = divmod(start, 60.0)
    kind = "timestamped target" if timestamps else "target"
    return VocabtuneError(
        f"the chunk at {int(minutes)}:{seconds:05.2f} ({start:.2f} s) needs a {kind} of "
        f"{n_tokens} tokens, over Whisper's {MAX_TARGET_TOKENS}-token limit",
        file=source,
        hint="split the cues around that time into shorter ones in the .vtt and run "
             "prepare_data.py build again (Whisper cannot emit that much text for one 30 s window)")


def chosen(n: int, share: float, *, seed: int, epoch: int, stream: str) -> frozenset[int]:
    """Indices of exactly ``round(share * n)`` of ``n`` examples, drawn afresh each epoch.

    Deterministic in (seed, epoch, stream), so a resumed run picks what an uninterrupted
    one would; an exact count (not a coin per example) keeps small datasets at the share.
    """
    if not 0.0 <= share <= 1.0:
        raise VocabtuneError(f"{stream} share {share:g} is not between 0 and 1",
                             hint=f"pass --{stream}-share with a value such as 0.5")
    rng = random.Random(f"{stream}/{seed}/{epoch}")  # str seeds hash stably across runs
    return frozenset(rng.sample(range(n), round(share * n)))
