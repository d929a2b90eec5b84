"""The person's vocabulary (``vocab/*.txt``) and exact-spelling term matching.

File format: one term per line, spelt exactly as it must come out; optional aliases after
``|`` (spoken forms or known mis-hearings, used by ``suggest``), separated by ``|`` too;
``#`` starts a comment line; blank lines are ignored. Other layouts (spreadsheet columns,
bullets, numbering) are refused naming the line, not guessed at.

    Mixtral 8x7B | mixtral eight by seven b | mixed role

Matching is hand-written rather than a fuzzy library because the rule is exact. An
*occurrence* (:func:`find_term`) is the term's characters in any capitals, with no letter or
digit glued to either side and no version number after it ("LoRA" is not in "QLoRA", "Phi 2"
is not "Phi-2", "GPT-4" is not in "GPT-4.5"); whitespace inside a term may be any run of
spaces so line-wrapped captions still match, and an apostrophe any apostrophe ("d’effort" is
"d'effort"). It is *spelt right* (:func:`find_exact`, what
the term metrics count) only with the vocabulary's capitals, save a capital at the start of
a sentence. Duplicate terms are compared ignoring capitals.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from .common_words import is_lone_common_word
from .errors import VocabtuneError
from .fsutil import read_utf8
from .schema import Term


def read_vocab(path: Path) -> list[Term]:
    """All terms of ``path`` (a folder of ``*.txt`` files, or one file), in file order.
    Hidden files (``._terms.txt`` from macOS, editor backups) are not vocabulary."""
    if not path.exists():
        raise VocabtuneError("vocabulary not found", file=path,
                             hint="create it with one term per line, e.g. vocab/terms.txt")
    files = vocab_files(path) if path.is_dir() else [path]
    if not files:
        _refuse_other_files(path)
    terms: list[Term] = []
    seen: dict[str, Term] = {}
    for file in files:
        for term in parse_vocab_text(read_vocab_text(file), str(file)):
            key = same_apostrophes(term.text).casefold()
            if key in seen:
                first = seen[key]
                raise VocabtuneError(f'duplicate term "{term.text}" (first at line {first.line} of {first.file})',
                                     file=file, line=term.line, hint="delete one of the two lines")
            seen[key] = term
            terms.append(term)
    _check_aliases(terms, seen)
    return terms


def vocab_files(folder: Path) -> list[Path]:
    """The vocabulary files of a folder: ``*.txt`` in any capitals, hidden ones left out."""
    return sorted(f for f in _visible_files(folder) if f.suffix.lower() == ".txt")


def _visible_files(folder: Path) -> list[Path]:
    return [f for f in folder.iterdir() if not f.name.startswith(".") and not f.is_dir()]


def _refuse_other_files(folder: Path) -> None:
    """A folder whose only list is ``terms.csv`` or ``terms.docx`` read as "no terms" and
    went on without the person's vocabulary: name what is not read and what to do. A
    README (this project ships ``vocab/README.md``) is not a list of terms."""
    others = sorted(f.name for f in _visible_files(folder) if f.stem.casefold() != "readme")
    if others:
        raise VocabtuneError(f"no .txt file to read terms from ({', '.join(others[:3])}"
                             f"{' …' if len(others) > 3 else ''} not read)", file=folder,
                             hint="save the terms as plain text, one per line, e.g. "
                                  f"{folder / 'terms.txt'}")


def _check_aliases(terms: list[Term], by_key: dict[str, Term]) -> None:
    """An alias that is another term ("LoRA | QLoRA" beside "QLoRA") would have suggest
    rewrite every correct QLoRA into LoRA: surely a slip, so an error naming both lines.
    So is one alias given to two terms ("LoRA | lower" and "LowerBound | lower"): suggest
    can propose only one of them, and silently took the first."""
    owners: dict[str, Term] = {}
    for term in terms:
        for alias in term.aliases:
            other = by_key.get(alias.casefold())
            if other is not None and other is not term:
                raise VocabtuneError(f'alias "{alias}" of "{term.text}" is also a term (line {other.line} '
                                     f"of {other.file})", file=term.file, line=term.line,
                                     hint="remove the alias, or the term, so each spelling means one thing")
            first = owners.setdefault(" ".join(alias.casefold().split()), term)
            if first is not term:
                raise VocabtuneError(f'alias "{alias}" of "{term.text}" is also an alias of "{first.text}" '
                                     f"(line {first.line} of {first.file})", file=term.file, line=term.line,
                                     hint="keep it on the term it stands for, so suggest knows which one to propose")


def read_vocab_text(file: Path) -> str:
    """The file's text in NFC, so a term typed with decomposed accents (macOS) matches the
    composed text of captions; unreadable or non-UTF-8 files are a one-line error."""
    return unicodedata.normalize("NFC", read_utf8(file, "the vocabulary file"))


def parse_vocab_text(text: str, file: str = "<vocab>") -> list[Term]:
    """Parse one vocabulary file's text; errors name the file and line."""
    terms = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        _check_layout(" | ".join(parts), file, number)    # spacing around "|" is free
        if not parts[0]:
            raise VocabtuneError("aliases without a term", file=file, line=number,
                                 hint='write the exact spelling first: "Term | alias"')
        if any(not p for p in parts[1:]):
            raise VocabtuneError(f'empty alias for "{parts[0]}"', file=file, line=number,
                                 hint='remove the stray "|"')
        terms.append(Term(text=" ".join(parts[0].split()),
                          aliases=tuple(" ".join(a.split()) for a in parts[1:]),
                          file=file, line=number))
    _check_numbering(terms, file)
    return terms


ONE_PER_LINE = 'one term per line, aliases after "|": LoRA | lower'
_COLUMNS = "write " + ONE_PER_LINE
# Lists pasted from elsewhere: a spreadsheet's columns (a tab, "term;alias", "term,alias",
# a quoted cell, an empty last cell), a bulleted list, a Markdown comment. No term is spelt
# with these, so taken as written each would be a "term" that never matches and reads
# wrong in a script. A comma after a space or between digits is kept: "Dr. Reddy's
# Laboratories, Ltd.", "2,4-D", "N,N-DMF".
_LAYOUTS = (
    (re.compile(r"\t"), "a tab in the line (columns pasted from a spreadsheet?)", _COLUMNS),
    (re.compile(r";"), 'a ";" in the line (columns of a spreadsheet or CSV file?)', _COLUMNS),
    (re.compile(r"[^\W\d_]{2},[^\W\d_]"), 'a "," between words (columns of a CSV file?)', _COLUMNS),
    (re.compile(r"^[\"“”]|[\"“”]\s*(?:[|,]|$)"), "quotes around the term (a CSV cell?)",
     "remove the quotes: write the term as it must come out"),
    (re.compile(r",\s*(?:\||$)"), 'a "," at the end of the term (an empty spreadsheet column?)',
     'remove the ","; aliases go after "|": LoRA | lower'),
    (re.compile(r"^[-*+•‣◦▪–]\s"), "a list bullet before the term",
     "remove the bullets: each line holds the term itself, e.g. LoRA | lower"),
    (re.compile(r"^<!--"), "an HTML comment", 'comment lines start with "#"'),
    # "LoRA  # low-rank adapters": a comment after the term was read into the term (or its
    # last alias); "C#" and "F#" have no space before the "#"
    (re.compile(r"\s#(?:\s|$)"), 'a "#" comment after the term',
     'put the comment on a line of its own, starting with "#"'),
    # notes ("vocab/README.txt": "Add new terms at the end, one per line."): six words or
    # more ending as a sentence does, on a lower-case word; a long name ends on a capital
    # ("Taiwan Semiconductor Manufacturing Company Co., Ltd.", "Who Wants to Be a
    # Millionaire?") or without a stop
    (re.compile(r"^(?:\S+\s+){5,}[a-zß-ÿ][^\W\d_]*[.!?]$"), "a sentence, not a term (notes in the vocabulary?)",
     'start note lines with "#", or keep notes outside the vocabulary folder'),
)


def _check_layout(line: str, file: str, number: int) -> None:
    """Refuse a line laid out as something other than a term: guessing which column or
    part is the term would sometimes guess wrong, and the fix is quick for the person."""
    for pattern, what, hint in _LAYOUTS:
        if pattern.search(line):
            raise VocabtuneError(f"{what}: {line!r}", file=file, line=number, hint=hint)


_NUMBERED = re.compile(r"\d{1,4}[.)]\s")


def _check_numbering(terms: Sequence[Term], file: str) -> None:
    """A numbered list ("1. LoRA", "2) Phi-2") would keep its numbers in every term. One
    numbered line alone may be a name ("1. FC Köln"), so only a file whose every term is
    numbered is refused."""
    if len(terms) >= 2 and all(_NUMBERED.match(t.text) for t in terms):
        raise VocabtuneError(f"every line is numbered ({terms[0].text!r})", file=file,
                             line=terms[0].line, hint=f"remove the numbers: {ONE_PER_LINE}")


# Apostrophes typed for one another: French, Italian or Catalan text written in Word or on
# a Mac has the typographic one ("l’IRM", "épreuve d’effort"), typed as you go; Whisper
# writes the straight one. Which one a caption holds is typography, not spelling: a term
# typed with one was neither found nor spelt right in text that had the other.
APOSTROPHES = "'’ʼ"
_STRAIGHT = str.maketrans({a: "'" for a in APOSTROPHES})


def same_apostrophes(text: str) -> str:
    """``text`` with every apostrophe the straight one."""
    return text.translate(_STRAIGHT)


# A word elided onto the next by an apostrophe: French "l'IRM", "d'insuffisance",
# "qu'un", "jusqu'à", Italian "un'ecografia", "dell'IVA". Not English contractions ("we'll",
# "I've", "it's": what follows is no word).
_ELISION = re.compile(rf"(?:[^\W\d_]{{1,2}}|[^\W\d_]*(?:qu|ll))[{APOSTROPHES}](?=[^\W\d_]{{2}})"
                      r"(?!(?:ll|ve|re)(?![^\W\d_]))", re.IGNORECASE)


def elision_length(word: str) -> int:
    """Characters of an elided word at the start of ``word`` (2 for "l'IRM"), else 0."""
    m = _ELISION.match(word)
    return m.end() if m else 0


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str]:
    """Regex for one term: exact characters, any whitespace run inside, no alnum glued on,
    and no version digits either ("GPT-4" is not in "GPT-4.5", "Llama 3" not in "Llama 3.1").
    Nor a dot glued to a letter or digit on either side: that is a dotted name of its own,
    "Llama" is not in "llama.cpp", nor "Node" in "Node.js" (suggest proposed "Llama.cpp")."""
    body = r"\s+".join(re.escape(same_apostrophes(word)).replace("'", f"[{APOSTROPHES}]")
                       for word in term.split())
    return re.compile(rf"(?<![^\W_])(?<![^\W_]\.)(?<!\d[.,]){body}(?![^\W_])(?!\.[^\W_])(?![.,]\d)",
                      re.IGNORECASE)


# A grammatical ending: up to 3 letters, maybe after an apostrophe ("LLMs", "tokenizer's",
# German "Wechselwirkungen", "Blutdrucksenkern", "Beipackzettels").
_ENDING = re.compile(r"['’]?[^\W\d_]{1,3}")
MIN_INFLECTED_CHARS = 4


def inflected(found: str, term: str) -> bool:
    """Whether ``found`` is ``term`` with a grammatical ending on its last word: the same
    word in another form, spelt right, which neither ``check`` nor ``suggest`` may call a
    mis-hearing (suggest turned "embeddings" into "embedding"). Only after a letter:
    "GPT-4o" is not a form of "GPT-4". Not the other way round: a term cut short ("Axolot",
    "Smol" for "SmolLM") is mostly a mis-hearing, though in German "Rückenschmerz" is also
    the singular of "Rückenschmerzen". Nor the term's last letter typed twice
    ("HellaSwagg", "LoRAA"): a key held a moment too long, not an ending in any language."""
    a, b = (" ".join(t.lower().split()) for t in (found, term))
    if len(b) < MIN_INFLECTED_CHARS or not b[-1].isalpha() or not a.startswith(b):
        return False
    ending = a[len(b):]
    return ending != b[-1] and _ENDING.fullmatch(ending) is not None


def find_term(term: str, text: str) -> list[tuple[int, int]]:
    """Character spans of every occurrence of ``term`` in ``text``, whatever its capitals
    (so a reference written "lora" still counts as an occurrence of "LoRA")."""
    return [m.span() for m in term_pattern(term).finditer(text)]


def spelt_as(term: str, found: str, sentence_start: bool = False) -> bool:
    """Whether ``found`` (text ``find_term`` matched) is the term's own spelling, capitals
    included: the person lists "LoRA", so "Lora" is a misspelling. Whitespace runs inside
    do not matter (a caption line break). One allowance, at the start of a sentence only:
    a capital first letter where the term starts in lower case ("Bitsandbytes loads ...";
    mid-sentence, "VLLM" is not "vLLM"). Nor which apostrophe it has ("d’effort")."""
    got, want = (" ".join(same_apostrophes(t).split()) for t in (found, term))
    return got == want or (sentence_start and want[:1].islower()
                           and got == want[:1].upper() + want[1:])


# Opening punctuation, as other languages write it too: Spanish "¿" and "¡", French "«",
# German "„" (a lower-case term after "¿" at a sentence start was called misspelt)
_OPENING = re.compile(r"[\s\"'“‘(\[¿¡«‹„‚]+$")


def starts_sentence(text: str, start: int) -> bool:
    """Whether ``text[start:]`` begins a sentence: nothing but opening punctuation before
    it, or a full stop, question or exclamation mark."""
    before = _OPENING.sub("", text[:start])
    return not before or before[-1] in ".!?…"


def spelt_right_at(term: str, text: str, start: int, end: int) -> bool:
    """:func:`spelt_as` for the span ``text[start:end]``, knowing where sentences start."""
    return spelt_as(term, text[start:end], starts_sentence(text, start))


def find_exact(term: str, text: str) -> list[tuple[int, int]]:
    """Spans of the occurrences of ``term`` spelt exactly (:func:`spelt_as`)."""
    return [(s, e) for s, e in find_term(term, text) if spelt_right_at(term, text, s, e)]


def term_spans(terms: Iterable[str], text: str, *, exact: bool = False) -> dict[str, list[tuple[int, int]]]:
    """Each term's occurrences in ``text`` (:func:`find_term`; with ``exact``, only those
    spelt right), leaving out any that lie inside a longer term's occurrence: "C" in "C++",
    "Llama" in "Llama 3" or "Node" in "Node.js" is that longer term, said once, not two
    terms. Counted twice, one mis-heard "Llama 3" was two misses and one right "C++" a hit
    for "C" too. The longer occurrence counts whatever its capitals, so a misspelt "c++"
    does not become an occurrence of "C". An everyday word in other capitals than the term
    is left out too (:func:`_the_word`)."""
    found = {term: find_term(term, text) for term in dict.fromkeys(terms)}
    every = [span for spans in found.values() for span in spans]
    return {term: [(s, e) for s, e in spans if not _inside_longer(s, e, every)
                   and (spelt_right_at(term, text, s, e) or not exact and not _the_word(text[s:e]))]
            for term, spans in found.items()}


def _the_word(found: str) -> bool:
    """An everyday word in other capitals than the term is the word, not the term: "go" in
    "let's go" is not "Go", nor "an apple" "Apple". Counted as the term, a right
    transcript of "let's go" scored a miss for "Go" (check and suggest leave it alone too).
    A reference written "lora" still counts as "LoRA"."""
    return is_lone_common_word(found)


def _inside_longer(start: int, end: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(s <= start and end <= e and e - s > end - start for s, e in spans)


def count_terms(terms: Iterable[str], text: str, *, exact: bool = False) -> Counter[str]:
    """How often each term occurs in ``text`` (terms that do not occur are left out; an
    occurrence inside a longer term's is the longer term's, :func:`term_spans`); with
    ``exact``, only occurrences spelt as in the vocabulary, capitals included."""
    return Counter({term: len(spans) for term, spans in term_spans(terms, text, exact=exact).items()
                    if spans})


def term_texts(terms: Sequence[Term]) -> list[str]:
    return [t.text for t in terms]
