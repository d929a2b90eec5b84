"""How a written term or caption phrase is *said*: the key that suggestion matching compares.

Whisper writes what it hears, so a term and its mis-hearing rarely agree in characters but
often agree in speech: "Mixtral 8x7B" is said "mixtral eight by seven b", and base Whisper
writes "mixed role 8 by 7 B". Turning both sides into the same spoken form makes that
visible: digits become number words ("10.7B" -> "ten point seven b"), "x" between digits
becomes "by", a dot inside a name becomes "dot" ("llama.cpp" -> "llama dot cpp"), hyphens
and camel case split words ("DeepSeek-V3" -> "deep seek v three"), and all-caps runs are
spelt out as letters ("MMLU" -> "m m l u"), since acronyms are read letter by letter.

Hand-written rather than num2words/inflect: neither is a dependency, and only cardinals and
decimals as people read them in jargon are needed. Pure functions, no I/O.
"""

from __future__ import annotations

import re

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
MAX_SPOKEN_DIGITS = 15          # longer digit runs (ids, hashes) are read digit by digit

SYMBOL_WORDS = {"+": "plus", "&": "and", "%": "percent", "@": "at", "×": "by",
                "§": "section", "¶": "paragraph"}     # "§ 230" is said "section two thirty"
# Unit abbreviations after a number are said as the unit's name ("5 mg": five milligrams):
# Whisper writes what it hears, "Ramipril 5 milligrams", and the term must match all of it,
# not only "Ramipril 5" (a suggestion would leave "Ramipril 5 mg milligrams"). Only units
# not read letter by letter and not ambiguous after a number ("5G", "7B" stay letters).
UNIT_WORDS = {"mg": "milligrams", "mcg": "micrograms", "µg": "micrograms", "μg": "micrograms",
              "ml": "milliliters", "kg": "kilograms", "mmol": "millimoles", "km": "kilometers",
              "cm": "centimeters", "mm": "millimeters", "ms": "milliseconds", "hz": "hertz",
              "khz": "kilohertz", "mhz": "megahertz", "ghz": "gigahertz", "kb": "kilobytes",
              "mb": "megabytes", "gb": "gigabytes", "tb": "terabytes"}
# Letters, digits and single symbols; apostrophes inside words vanish first ("don't" -> "dont").
_TOKEN = re.compile(r"[^\W\d_]+|\d+|[^\w\s]", re.UNICODE)
_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")


def number_words(digits: str) -> list[str]:
    """Spoken words of a digit string: "34" -> thirty four, "2048" -> two thousand forty
    eight. Leading zeros and very long runs are read digit by digit ("007" -> zero zero
    seven), as people read version numbers and ids."""
    if digits.startswith("0") and len(digits) > 1 or len(digits) > MAX_SPOKEN_DIGITS:
        return [ONES[int(d)] for d in digits]
    return _cardinal(int(digits))


def _cardinal(n: int) -> list[str]:
    if n < 20:
        return [ONES[n]]
    if n < 100:
        return [TENS[n // 10]] + ([ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [ONES[n // 100], "hundred"] + (_cardinal(n % 100) if n % 100 else [])
    for value, name in SCALES:
        if n >= value:
            return _cardinal(n // value) + [name] + (_cardinal(n % value) if n % value else [])
    raise AssertionError("unreachable: SCALES covers every n >= 1000")


def camel_pieces(word: str) -> list[str]:
    """Split a run of letters where the case says a new word starts: "DeepSeek" ->
    Deep|Seek, "vLLM" -> v|LLM, "QLoRA" -> Q|Lo|RA, "LLaVA" -> L|La|VA (any script)."""
    pieces, start = [], 0
    for i in range(1, len(word)):
        prev, cur, nxt = word[i - 1], word[i], word[i + 1: i + 2]
        if cur.isupper() and (prev.islower() or (prev.isupper() and nxt.islower())):
            pieces.append(word[start:i])
            start = i
    return pieces + [word[start:]]


def _letter_words(piece: str) -> list[str]:
    """One camel-case piece: all-caps runs of 2+ letters are spelt out, the rest is a word."""
    if len(piece) > 1 and piece.isupper():
        return [c.lower() for c in piece]
    return [piece.lower()]


def _symbol_words(symbol: str, prev: str, next_: str) -> list[str]:
    """A symbol between tokens: "." is "point" between digits and "dot" inside a name
    (but not between initials) or opening one (".NET" is "dot net": keyed "net", Whisper's
    "dot net" was never matched);
    separators (hyphen, slash, comma, quotes) and sentence punctuation say nothing. "#"
    after a letter is "sharp" ("C#", "F#"): unspoken, "F#" was keyed as the bare letter
    "f", and suggest turned "f sharp" into "F# sharp"."""
    if symbol == "#" and prev.isalpha():
        return ["sharp"]
    if symbol == ".":
        if prev.isdigit() and next_.isdigit():
            return ["point"]
        in_name = prev.isalnum() and next_.isalnum()
        initials = len(prev) == 1 and len(next_) == 1      # "M.M.L.U", "e.g": unspoken
        opens_name = not prev and next_.isalpha()           # ".NET", ".io"; not "...so"
        return ["dot"] if in_name and not initials or opens_name else []
    return [SYMBOL_WORDS[symbol]] if symbol in SYMBOL_WORDS else []


def _between_numbers(matches: list[re.Match[str]], i: int) -> bool:
    return (0 < i < len(matches) - 1 and matches[i - 1].group().isdigit()
            and matches[i + 1].group().isdigit())


def _after_number(text: str, matches: list[re.Match[str]], i: int) -> bool:
    """Whether token ``i`` follows a number, glued or after spaces ("5mg", "5 mg")."""
    if i == 0 or not matches[i - 1].group().isdigit():
        return False
    return not text[matches[i - 1].end():matches[i].start()].strip()


def spoken_words(text: str) -> list[str]:
    """The words a person says when reading ``text`` aloud, lower case (see module doc).

    Symbols are read with the neighbours glued to them: "10.7" has a digit on each side of
    the dot, "end. Next" has a space after it and says nothing.
    """
    text = _APOSTROPHE.sub("", text)
    matches = list(_TOKEN.finditer(text))
    words: list[str] = []
    for i, m in enumerate(matches):
        token = m.group()
        # a neighbour counts only when glued on: "end. Next" has no dot in a name
        prev = matches[i - 1].group() if i and matches[i - 1].end() == m.start() else ""
        glued = i + 1 < len(matches) and matches[i + 1].start() == m.end()
        next_ = matches[i + 1].group() if glued else ""
        if token.isdigit():
            words += number_words(token)
        elif token.lower() == "x" and _between_numbers(matches, i):
            words.append("by")                      # "8x7B", "8 x 7B": eight by seven b
        elif token.lower() in UNIT_WORDS and _after_number(text, matches, i):
            words.append(UNIT_WORDS[token.lower()])
        elif token[0].isalpha():
            for piece in camel_pieces(token):
                words += _letter_words(piece)
        else:
            words += _symbol_words(token, prev, next_)
    return words


def spoken_key(text: str) -> str:
    """Spoken words joined *without* spaces: "deep seek" and "DeepSeek", or "M M L U" and
    "MMLU", say the same thing, and Whisper's word breaks in jargon are arbitrary."""
    return "".join(spoken_words(text))
