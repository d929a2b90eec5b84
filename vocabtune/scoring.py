"""Scores a person can trust: WER on Whisper-normalised text, and vocabulary-term
recall/precision on exact spelling (the number the person cares about most).

All pure functions over lists of strings; models and audio stay elsewhere.

Term rules: an occurrence of a term in a reference (found whatever its capitals,
vocab.find_term, though an everyday word in other capitals is the word) counts as recognised when the hypothesis of the same chunk contains the
term spelt exactly as in vocab/, capitals included (vocab.find_exact: "Lora" is not
"LoRA"; surrounding punctuation and line breaks are ignored, and a lower-case term may
start with a capital, as at the start of a sentence). Per chunk, hits are
min(reference count, hypothesis count); exact hypothesis occurrences beyond the reference
count are false alarms (they lower precision). On both sides an occurrence inside a longer
term's ("C" in "C++", "Llama" in "Llama 3") is the longer term's only (vocab.term_spans).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources
from typing import Sequence

import jiwer

from .schema import EvalReport, TermScore
from .targets import is_english
from .vocab import find_term, same_apostrophes, term_spans


@lru_cache(maxsize=2)
def _normalizer(english: bool):
    """Whisper's own choice (its paper, appendix C): the English normaliser for English,
    the basic one for every other language. The English one reads words as English: it
    turns "2,5 mg" and "25 mg" into the same thing, "1.000" into "one", drops "um" as a
    filler and strips umlauts, so German errors would score as right. The basic one only
    lower-cases and makes punctuation and bracketed noise into spaces, accents kept."""
    from transformers.models.whisper.english_normalizer import (BasicTextNormalizer,
                                                                 EnglishTextNormalizer)

    if not english:
        return BasicTextNormalizer()
    # OpenAI's spelling map (MIT, shipped in vocabtune/assets so scoring works offline;
    # PITFALLS #9: transformers needs the map passed in).
    mapping = json.loads(resources.files("vocabtune.assets").joinpath("english_normalizer.json").read_text())
    return EnglishTextNormalizer(mapping)


def normalize(text: str, language: str = "en") -> str:
    """Whisper's normalisation for ``language`` (lower case, punctuation; for English also
    numbers and spelling), so WER counts words, not formatting."""
    return _normalizer(is_english(language))(text)


def normaliser_name(language: str) -> str:
    """How reports and model cards name it."""
    return "Whisper's English normaliser" if is_english(language) else \
        "Whisper's basic (non-English) normaliser"


def wer(refs: Sequence[str], hyps: Sequence[str], language: str = "en") -> float:
    """Corpus WER on normalised text. jiwer refuses empty references, so chunks whose
    reference normalises to nothing count their hypothesis words as insertions."""
    errors, words = error_counts(refs, hyps, language)
    return errors / words if words else 0.0


def error_counts(refs: Sequence[str], hyps: Sequence[str], language: str = "en") -> tuple[int, int]:
    """(word errors, reference words) on normalised text: the WER's two sides, for a report
    that shows "12 errors in 350 words" beside the percentage."""
    return _error_counts([normalize(r, language) for r in refs], [normalize(h, language) for h in hyps])


def _error_counts(refs: Sequence[str], hyps: Sequence[str]) -> tuple[int, int]:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    keep = [i for i, r in enumerate(refs) if r.strip()]
    extra = sum(len(hyps[i].split()) for i in range(len(refs)) if not refs[i].strip())
    if not keep:
        return extra, 0
    out = jiwer.process_words([refs[i] for i in keep], [hyps[i] if hyps[i].strip() else "" for i in keep])
    words = sum(len(refs[i].split()) for i in keep)
    return out.substitutions + out.deletions + out.insertions + extra, words


def term_scores(refs: Sequence[str], hyps: Sequence[str], terms: Sequence[str]) -> list[TermScore]:
    """Per-term occurrences, hits and false alarms, chunk by chunk."""
    scores = {t: TermScore(term=t) for t in terms}
    for ref, hyp in zip(refs, hyps, strict=True):
        in_ref, in_hyp = term_spans(terms, ref), term_spans(terms, hyp, exact=True)
        for term, score in scores.items():
            n_ref, n_hyp = len(in_ref[term]), len(in_hyp[term])
            score.occurrences += n_ref
            score.hits += min(n_ref, n_hyp)
            score.false_alarms += max(0, n_hyp - n_ref)
    return list(scores.values())


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def term_summary(per_term: Sequence[TermScore]) -> tuple[float | None, float | None, float | None]:
    """Overall (recall, precision, F1) over all occurrences, not averaged per term."""
    hits = sum(s.hits for s in per_term)
    recall = _ratio(hits, sum(s.occurrences for s in per_term))
    precision = _ratio(hits, hits + sum(s.false_alarms for s in per_term))
    f1 = (2 * recall * precision / (recall + precision)
          if recall is not None and precision is not None and recall + precision else None)
    return recall, precision, f1


_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def _words_with_term_flags(text: str, terms: Sequence[str]) -> tuple[list[str], list[bool]]:
    """Lower-cased words with surrounding punctuation stripped (spelling inside kept, so
    "phi-2" stays one word, save which apostrophe: "l’IRM" is "l'IRM"), and for each whether
    it lies inside a term occurrence."""
    spans = [span for term in terms for span in find_term(term, text)]
    words, flags = [], []
    for m in re.finditer(r"\S+", text):
        word = same_apostrophes(_EDGE_PUNCT.sub("", m.group().lower()))
        if word:
            words.append(word)
            flags.append(any(s < m.end() and m.start() < e for s, e in spans))
    return words, flags


def biased_wers(refs: Sequence[str], hyps: Sequence[str], terms: Sequence[str]) -> tuple[float | None, float | None]:
    """(term WER, other WER): errors on reference words inside terms vs the rest, as in
    contextual-biasing papers (B-WER / U-WER). Text keeps its spelling here (no Whisper
    normaliser, which would turn "Phi-2" into "phi 2"). An insertion is charged to the
    side of the reference word before it."""
    counts = {True: [0, 0], False: [0, 0]}  # flag -> [errors, words]
    for ref, hyp in zip(refs, hyps, strict=True):
        rw, flags = _words_with_term_flags(ref, terms)
        hw, _ = _words_with_term_flags(hyp, ())
        for f in flags:
            counts[f][1] += 1
        if not rw:
            counts[False][0] += len(hw)
            continue
        for chunk in jiwer.process_words(" ".join(rw), " ".join(hw) or "").alignments[0]:
            if chunk.type in ("substitute", "delete"):
                for i in range(chunk.ref_start_idx, chunk.ref_end_idx):
                    counts[flags[i]][0] += 1
            elif chunk.type == "insert":
                side = flags[max(chunk.ref_start_idx - 1, 0)]
                counts[side][0] += chunk.hyp_end_idx - chunk.hyp_start_idx
    return _ratio(*counts[True]), _ratio(*counts[False])


def score(model_name: str, refs: Sequence[str], hyps: Sequence[str], terms: Sequence[str],
          seconds: float = 0.0, language: str = "en") -> EvalReport:
    """Everything the reports show for one model on one split, in ``language``."""
    per_term = term_scores(refs, hyps, terms)
    recall, precision, f1 = term_summary(per_term)
    term_wer, other_wer = biased_wers(refs, hyps, terms)
    return EvalReport(model=model_name, wer=wer(refs, hyps, language), term_recall=recall,
                      term_precision=precision, term_f1=f1, term_wer=term_wer,
                      other_wer=other_wer, per_term=per_term, num_chunks=len(refs), seconds=seconds)
