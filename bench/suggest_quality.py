#!/usr/bin/env python3
"""How good are ``suggest``'s corrections? Precision and recall against corrected VTTs.

    .venv/bin/python bench/suggest_quality.py --base DIR [--reference ../shared/data/llm-lingo]

``--base`` holds base-Whisper VTTs (``prepare_data.py transcribe``), ``--reference`` the
hand-corrected VTTs of the same names and ``terms.txt``. Base and reference cues are cut
differently, so both are grouped into blocks of cues that overlap in time, and each block of
base text is scored against the reference text of the same block.

Per block and term: ``missed`` = max(0, reference count - base count spelt exactly), the
occurrences the person must fix, counted as the term metrics count them
(:func:`vocabtune.vocab.count_terms`: reference occurrences whatever their capitals, base
ones only with the vocabulary's; neither "go" in "let's go" for the term "Go" nor "C"
inside "C++"). A suggestion of term T
is *correct* up to ``missed`` of T in that block; precision = correct / suggestions, recall =
correct / missed. The suggestions that change capitals only are also counted apart. Term
recall and WER of the whole text before and after applying every suggestion show the end
result, damage included.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vocabtune.captions import read_vtt  # noqa: E402
from vocabtune.matching import Matcher, Suggestion  # noqa: E402
from vocabtune.schema import Cue  # noqa: E402
from vocabtune.scoring import term_scores, term_summary, wer  # noqa: E402
from vocabtune.vocab import count_terms, find_term, read_vocab  # noqa: E402


@dataclass
class Tally:
    missed: int = 0             # reference occurrences not spelt right in the base
    suggested: int = 0
    correct: int = 0
    case_fixes: int = 0
    cues: int = 0
    seconds: float = 0.0        # matcher time
    refs: list[str] = field(default_factory=list)       # whole-file texts for term recall
    before: list[str] = field(default_factory=list)     # and WER
    after: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    unfixed: list[str] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        for name in ("missed", "suggested", "correct", "case_fixes", "cues", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in ("refs", "before", "after", "wrong", "unfixed"):
            getattr(self, name).extend(getattr(other, name))


def blocks(base: list[Cue], ref: list[Cue]) -> list[tuple[list[Cue], list[Cue]]]:
    """Base and reference cues in blocks that overlap in time: a block closes where no cue
    of either file spans the moment. Whisper cuts a sentence in two where the person's cue
    holds it whole, so one cue rarely matches one cue; a block holds both sides."""
    tagged = sorted([(c.start, c.end, 0, c) for c in base] + [(c.start, c.end, 1, c) for c in ref],
                    key=lambda t: (t[0], t[1], t[2]))
    out: list[tuple[list[Cue], list[Cue]]] = []
    end = float("-inf")
    for start, stop, side, cue in tagged:
        if start >= end:
            out.append(([], []))
        out[-1][side].append(cue)
        end = max(end, stop)
    return out


def apply(text: str, suggestions: list[Suggestion]) -> str:
    for s in sorted(suggestions, key=lambda s: s.start, reverse=True):
        text = text[:s.start] + s.replacement + text[s.end:]
    return text


def score_block(base: str, ref: str, suggestions: list[Suggestion], terms: list[str], where: str) -> Tally:
    """Correct suggestions in one block: up to the occurrences the base missed, per term."""
    t = Tally()
    said, right = count_terms(terms, ref), count_terms(terms, base, exact=True)
    missed = Counter({term: max(0, said[term] - right[term]) for term in terms})
    t.missed = sum(missed.values())
    for s in suggestions:
        if find_term(s.term, s.found):          # the term with other capitals
            t.case_fixes += 1
        t.suggested += 1
        if missed[s.term] > 0:
            missed[s.term] -= 1
            t.correct += 1
        else:
            t.wrong.append(f'{where}: "{s.found}" -> "{s.term}"   (reference: {ref})')
    t.unfixed += [f"{where}: {term} x{n}   (base: {base})" for term, n in missed.items() if n > 0]
    return t


def score_file(base: Path, ref: Path, matcher: Matcher, terms: list[str]) -> Tally:
    """Precision and recall block by block; term recall and WER over the whole file's
    text, so they do not depend on how the blocks fell."""
    base_cues, _ = read_vtt(base)
    ref_cues, _ = read_vtt(ref)
    start = time.perf_counter()
    found = {id(c): matcher.suggest(c.text) for c in base_cues}
    total = Tally(cues=len(base_cues), seconds=time.perf_counter() - start)
    for base_block, ref_block in blocks(base_cues, ref_cues):
        where = f"{base.name}:{(base_block[0].line or 0) + 1}" if base_block else base.name
        total.add(score_block(" ".join(c.text for c in base_block), " ".join(c.text for c in ref_block),
                              [s for c in base_block for s in found[id(c)]], terms, where))
    total.refs = [" ".join(c.text for c in ref_cues)]
    total.before = [" ".join(c.text for c in base_cues)]
    total.after = [" ".join(apply(c.text, found[id(c)]) for c in base_cues)]
    return total


def pct(num: float, den: float) -> str:
    return f"{100 * num / den:.1f}%" if den else "n/a"


def row(name: str, t: Tally, terms: list[str]) -> str:
    before, _, _ = term_summary(term_scores(t.refs, t.before, terms))
    after, _, _ = term_summary(term_scores(t.refs, t.after, terms))
    return (f"| {name} | {t.missed} | {t.suggested} | {t.correct} | {pct(t.correct, t.suggested)} "
            f"| {pct(t.correct, t.missed)} | {t.case_fixes} | {pct(before or 0, 1)} -> {pct(after or 0, 1)} "
            f"| {pct(wer(t.refs, t.before), 1)} -> {pct(wer(t.refs, t.after), 1)} "
            f"| {1000 * t.seconds / max(1, t.cues):.1f} |")


def false_alarms(path: Path, matcher: Matcher) -> str:
    """Suggestions on text that holds no term: each one is a false alarm."""
    cues, _ = read_vtt(path)
    found = [(cue, s) for cue in cues for s in matcher.suggest(cue.text)]
    listed = "; ".join(f'"{s.found}" -> "{s.term}"' for _, s in found)
    words = sum(len(c.text.split()) for c in cues)
    return (f"\nordinary English ({path}, {len(cues)} cues, {words} words): "
            f"{len(found)} false alarm(s){': ' + listed if listed else ''}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="folder of base-Whisper VTTs")
    p.add_argument("--reference", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/llm-lingo",
                   help="folder of corrected VTTs with the same names, and terms.txt")
    p.add_argument("--vocab", type=Path, default=None, help="vocabulary (default: REFERENCE/terms.txt)")
    p.add_argument("--general", type=Path, nargs="*", default=None,
                   help="VTTs of ordinary English without any term (default: ../shared/data/general/*.vtt): "
                        "every suggestion there is a false alarm")
    p.add_argument("--show-wrong", action="store_true", help="list every wrong suggestion")
    p.add_argument("--show-unfixed", action="store_true", help="list every misspelt term left unfixed")
    a = p.parse_args(argv)
    terms = read_vocab(a.vocab or a.reference / "terms.txt")
    names = [t.text for t in terms]
    matcher = Matcher(terms)
    print("| file | terms to fix | suggestions | correct | precision | recall | of them capitals only "
          "| term recall before -> after | WER before -> after | ms per cue |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    total = Tally()
    for base in sorted(a.base.glob("*.vtt")):
        ref = a.reference / base.name
        if base.name.endswith((".suggested.vtt", ".bak.vtt")) or not ref.exists():
            continue
        tally = score_file(base, ref, matcher, names)
        print(row(base.name, tally, names))
        total.add(tally)
    print(row("**all**", total, names))
    general = a.general if a.general is not None else sorted(
        (a.reference.parent / "general").glob("*.vtt"))
    for path in general:
        print(false_alarms(path, matcher))
    if a.show_wrong:
        print("\n".join(["", "wrong suggestions:", *total.wrong]))
    if a.show_unfixed:
        print("\n".join(["", "misspelt terms left unfixed:", *total.unfixed]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
