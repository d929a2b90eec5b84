"""The person's vocabulary (``vocab/*.txt``) and exact-spelling term matching.

File format: one term per line, spelt exactly as it must come out; optional aliases after
``|`` (spoken forms or known mis-hearings, used by ``suggest``), separated by ``|`` too;
``#`` starts a comment line; blank lines are ignored.

    Mixtral 8x7B | mixtral eight by seven b | mixed role

Matching is hand-written rather than a fuzzy library because the rule is exact: a term
counts when it appears case-insensitively with no letter or digit glued to either side
("LoRA" is not in "QLoRA", "Phi 2" is not "Phi-2"); whitespace inside a term may be any run
of spaces so line-wrapped captions still match.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from .errors import VocabtuneError
from .schema import Term


def read_vocab(path: Path) -> list[Term]:
    """All terms of ``path`` (a folder of ``*.txt`` files, or one file), in file order."""
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not path.exists():
        raise VocabtuneError("vocabulary not found", file=path,
                             hint="create it with one term per line, e.g. vocab/terms.txt")
    terms: list[Term] = []
    seen: dict[str, Term] = {}
    for file in files:
        for term in parse_vocab_text(file.read_text(encoding="utf-8-sig"), str(file)):
            key = term.text.casefold()
            if key in seen:
                first = seen[key]
                raise VocabtuneError(f'duplicate term "{term.text}" (first at line {first.line} of {first.file})',
                                     file=file, line=term.line, hint="delete one of the two lines")
            seen[key] = term
            terms.append(term)
    return terms


def parse_vocab_text(text: str, file: str = "<vocab>") -> list[Term]:
    """Parse one vocabulary file's text; errors name the file and line."""
    terms = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if not parts[0]:
            raise VocabtuneError("aliases without a term", file=file, line=number,
                                 hint='write the exact spelling first: "Term | alias"')
        if any(not p for p in parts[1:]):
            raise VocabtuneError(f'empty alias for "{parts[0]}"', file=file, line=number,
                                 hint='remove the stray "|"')
        terms.append(Term(text=" ".join(parts[0].split()),
                          aliases=tuple(" ".join(a.split()) for a in parts[1:]),
                          file=file, line=number))
    return terms


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str]:
    """Regex for one term: exact characters, any whitespace run inside, no alnum glued on."""
    body = r"\s+".join(re.escape(word) for word in term.split())
    return re.compile(rf"(?<![^\W_]){body}(?![^\W_])", re.IGNORECASE)


def find_term(term: str, text: str) -> list[tuple[int, int]]:
    """Character spans of every occurrence of ``term`` in ``text``."""
    return [m.span() for m in term_pattern(term).finditer(text)]


def count_terms(terms: Iterable[str], text: str) -> Counter[str]:
    """How often each term occurs in ``text`` (terms that do not occur are left out)."""
    counts: Counter[str] = Counter()
    for term in terms:
        n = len(find_term(term, text))
        if n:
            counts[term] = n
    return counts


def term_texts(terms: Sequence[Term]) -> list[str]:
    return [t.text for t in terms]
