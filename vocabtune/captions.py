"""WebVTT captions: parse, validate, format, and write without ever clobbering an edit.

webvtt-py (0.6.0) does the cue grammar: timestamps, settings, identifiers, tags. What it
cannot give us is *where* things are: it keeps no line numbers, and like a browser it
silently drops a block whose timing line it cannot read (SOURCES.md #22, #24, #27) — for
training data that silently loses text while its audio stays in a chunk. So this module
splits the file into blocks itself (the same rule as webvtt-py: a blank line ends a block,
and a ``-->`` line that cannot be the block's timing line starts a new one), remembers each
block's line numbers, and hands every cue block to webvtt-py on its own. Anything
webvtt-py skips thereby becomes an ERROR with a line number instead of vanishing.

Cue text is made plain here, once, for every stage: tags (``<v Bob>``, ``<c.red>``, inline
``<00:01.500>`` times) removed by webvtt-py, *then* entities decoded (so ``&lt;`` never
becomes a tag), whitespace folded into single spaces.
"""

from __future__ import annotations

import html
import io
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError
from webvtt.models import Timestamp

from .backups import write_new
from .config import MAX_CHUNK_S, OVERLAP_WARN_S, PAST_END_TOLERANCE_S
from .errors import VocabtuneError
from .fsutil import read_utf8
from .schema import Cue, Problem, Severity
from .vocab import find_term

log = logging.getLogger(__name__)

SIGNATURE = "WEBVTT"
LANGUAGE_HEADER = "Language"     # the header line transcribe writes: "Language: de"
TIMING_HINT = "write it as 00:00:01.000 --> 00:00:04.000 (hh:mm:ss.mmm, the hours optional)"

# webvtt-py's lenient timestamp pattern accepts "00:0:00.0", which browsers drop, and its
# strict one rejects 1-digit hours ("0:00:00.000"), which browsers keep (SOURCES.md #27).
# So we check field widths ourselves, as the W3C parser does: hours any number of digits,
# minutes and seconds exactly 2, the fraction exactly 3, and nothing glued to the end time.
_SPEC_TS = r"(?:\d+:)?\d{2}:\d{2}\.\d{3}"
_SPEC_TIMINGS = re.compile(rf"[ \t]*{_SPEC_TS}[ \t]*-->[ \t]*{_SPEC_TS}(?=[ \t]|$)")
# Block kinds webvtt-py skips without saying; we must tell them from lost cue text.
_NOTE = re.compile(r"NOTE(?:[ \t]|$)")
_STYLE_OR_REGION = re.compile(r"(?:STYLE|REGION)[ \t]*$")
# A cue saying more than this many words a second is mistimed (a typo such as 00:00:07.282
# for 00:00:11.282): fast speech is 4-5 words a second. Short cues' times are too loose
# to judge, so it needs MIN_RATE_WORDS words.
MAX_WORDS_PER_S = 8.0
MIN_RATE_WORDS = 5
# Cue text tags (W3C §4.2.2): c, i, b, u, ruby, rt, v, lang, each optionally closed and
# with .classes and an annotation, and inline timestamps; anything else in <> is dropped.
_TAG = re.compile(r"<(.*?)>")
_KNOWN_TAG = re.compile(rf"/?(?:(?:c|i|b|u|ruby|rt|v|lang)(?:[.\s].*)?|{_SPEC_TS})", re.DOTALL)
ARROW = "-->"
# Two times at the start of a line with no "-->" between them: "->", "–>" (a word
# processor's dash), "→" or nothing. webvtt-py sees no timing line there at all.
_STARTS_WITH_TIME = re.compile(r"[ \t]*\d+:\d+")
_TIMES_WITHOUT_ARROW = re.compile(r"[ \t]*(?:\d+:)?\d+:\d+(?:[.,]\d+)?[ \t]*\S{0,3}[ \t]*(?:\d+:)?\d+:\d+")


@dataclass
class _Block:
    """Consecutive non-empty lines of the file, with the 1-based number of the first."""

    lines: list[str]
    first: int
    cut: bool = False           # ended by a "-->" line instead of a blank line or EOF

    def timing_index(self) -> int | None:
        """Index of the timing line: the first line, or the second after an identifier."""
        for i, line in enumerate(self.lines[:2]):
            if ARROW in line:
                return i
        return None


# --- reading ---------------------------------------------------------------------------

def read_vtt(path: Path) -> tuple[list[Cue], list[Problem]]:
    """Cues and problems of one VTT file. Reads bytes so a BOM and any mix of CR, LF and
    CRLF are handled the same on every platform; bytes that are not UTF-8 are an ERROR."""
    path = Path(path)
    try:
        text = read_utf8(path)
    except VocabtuneError as err:
        return [], [Problem(Severity.ERROR, str(path), err.line, err.message, err.hint)]
    return parse_vtt(text, str(path))


def unreadable(path: Path) -> Problem | None:
    """The error that leaves no cue to read in ``path`` (not UTF-8, no WEBVTT header, an empty
    file), or None. Why: a command that compares against the person's VTT (finetune.py
    transcribe's term table and review) read such a file as one with no cues, and wrote a
    review of "0 of yours" that never said the file could not be read."""
    cues, problems = read_vtt(path)
    if cues:
        return None
    return next((p for p in problems if p.severity is Severity.ERROR), None)


def parse_vtt(text: str, file: str = "<vtt>") -> tuple[list[Cue], list[Problem]]:
    """Parse VTT text into plain-text cues plus the problems found, each with its line.

    Pure; never raises for bad input. Structural damage that loses text or timing is an
    ERROR; recoverable slips (a missing blank line, a repeated timing line) are WARNINGs.
    Timing rules (order, overlap, length) are :func:`validate_cues`'s job.
    """
    lines = normalise_newlines(text).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    bad = _signature_problem(lines, file)
    if bad:
        return [], [bad]
    cues: list[Cue] = []
    problems: list[Problem] = []
    blocks = split_blocks(lines)
    for prev, block in zip(blocks, blocks[1:]):
        if block.timing_index() is None:
            problems += _orphan_problems(block, file)
            continue
        problems += _layout_problems(prev, block, blocks[0], file)
        problems += _identifier_problems(block, file)
        if _repeats_timing(prev, block) and cues and cues[-1].line == prev.first:
            cues.pop()          # one cue whose timing line was pasted twice, not two cues
        cue, problem = _parse_cue_block(block, file)
        cues += [cue] if cue else []
        problems += [problem] if problem else []
        problems += _unknown_tag_problems(block, file) if cue else []
    cues, rolled = drop_rolling_repeats(cues)
    if rolled:
        problems.append(Problem(Severity.WARNING, file, rolled[0],
                                f"rolling captions: removed {len(rolled)} line(s) repeated from the cue above",
                                "check the text; each word should appear once"))
    return cues, sorted(problems, key=lambda p: p.line or 0)


def normalise_newlines(text: str) -> str:
    """Drop a leading BOM and turn CRLF and lone CR into LF, as the WebVTT parser does."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _signature_problem(lines: list[str], file: str) -> Problem | None:
    """The file must start with ``WEBVTT`` then a space, a tab or the line end (W3C §6.1;
    webvtt-py accepts any line starting "WEBVTT" and says only "Invalid format")."""
    def error(message: str, hint: str) -> Problem:
        return Problem(Severity.ERROR, file, 1, message, hint)

    if not any(line.strip() for line in lines):
        return error("empty file: no WEBVTT header and no cues",
                     "transcribe the recording again (prepare_data.py transcribe --force)")
    first = lines[0]
    if first.startswith(SIGNATURE) and first[len(SIGNATURE):][:1] in ("", " ", "\t"):
        return None
    later = next((n for n, line in enumerate(lines, 1) if line.startswith(SIGNATURE)), None)
    if not first.strip() and later:
        return error("blank line before WEBVTT: the file must start with WEBVTT",
                     f"delete the empty line(s) above WEBVTT (line {later})")
    if SIGNATURE in first.upper():
        odd = odd_character(first)
        return error(f'the first line "{first[:40]}" is not a WebVTT header',
                     f"it holds {odd}: retype the line as WEBVTT" if odd else
                     "it must start with WEBVTT exactly: capitals, nothing before it, "
                     "and a space before any text after it")
    return error("missing WEBVTT header: the first line must be WEBVTT",
                 "add a line WEBVTT and an empty line at the top of the file")


def odd_character(line: str) -> str | None:
    """The first character of a header or timing line that is not plain ASCII, named, or
    None. A no-break space from a word processor, a zero-width space or a second BOM is
    invisible in the error message itself, so the person would be shown a line that looks
    right and told it is wrong."""
    ch = next((c for c in line if not (" " <= c <= "~" or c == "\t")), None)
    if ch is None:
        return None
    name = unicodedata.name(ch, "a control character").lower()
    return f"an invisible or look-alike character, U+{ord(ch):04X} ({name})"


def split_blocks(lines: Sequence[str]) -> list[_Block]:
    """Blocks as webvtt-py (and the W3C parser) form them, with line numbers.

    A blank line ends a block; a line with ``-->`` starts a new one unless it can be the
    current block's timing line (its first line, or its second after an identifier). The
    header block ends at any ``-->`` line.

    Unlike the W3C parser (and webvtt-py), a line of nothing but spaces or tabs counts as
    blank, except inside a NOTE, STYLE or REGION block (where CSS or a long note may hold
    one): it looks blank in every editor, and editors that keep trailing spaces leave such
    lines between cues. Read by the spec, the cue identifier below one was glued to the
    text above ("hello 2") with only a misleading "no blank line" warning.
    """
    blocks: list[_Block] = []
    block = _Block([], 1)
    for number, line in enumerate(lines, start=1):
        if not line.strip(" \t") and not _is_comment(block):
            line = ""
        in_header = not blocks
        if block.lines and (not line or (ARROW in line and (
                in_header or len(block.lines) > 1 or ARROW in block.lines[0]))):
            block.cut = bool(line)
            blocks.append(block)
            block = _Block([], number)
        if line:
            if not block.lines:
                block.first = number
            block.lines.append(line)
    if block.lines:
        blocks.append(block)
    return blocks


def _is_comment(block: _Block) -> bool:
    """A NOTE, STYLE or REGION block: no cue, and webvtt-py skips it."""
    return bool(block.lines) and bool(_NOTE.match(block.lines[0]) or _STYLE_OR_REGION.match(block.lines[0]))


def _orphan_problems(block: _Block, file: str) -> list[Problem]:
    """A block without a timing line: a NOTE, STYLE or REGION block is fine; text is an
    ERROR (webvtt-py drops it silently, SOURCES.md #24), since its audio would still be in
    a chunk whose text lacks it. One line cut off by the next timing line, after lines of
    other blank-looking characters (no-break spaces; spaces and tabs already end a block),
    is that cue's identifier (SOURCES.md #7): ignored, as browsers ignore it."""
    head = block.lines[0]
    if _is_comment(block):
        return []
    if _TIMES_WITHOUT_ARROW.match(head):
        return [_timing_problem(head, block.first, file)]
    text = [(block.first + i, line) for i, line in enumerate(block.lines) if line.strip()]
    if not text or (block.cut and len(text) == 1):
        return []
    line, words = text[0]
    return [Problem(Severity.ERROR, file, line, f'text without a timing line: "{words.strip()[:60]}"',
                    "add a timing line above it (00:00:01.000 --> 00:00:04.000) "
                    "or join it to the cue above by deleting the empty line")]


def _layout_problems(prev: _Block, block: _Block, header: _Block, file: str) -> list[Problem]:
    """Slips a person makes in an editor that a parser can recover from: warnings. (After
    text without timing, the ERROR for that text says it all.)"""
    if not prev.cut or (prev is not header and prev.timing_index() is None):
        return []
    line = block.first + (block.timing_index() or 0)
    if prev is header:
        return [Problem(Severity.WARNING, file, line, "no blank line between the header and the first cue",
                        "add an empty line above this timing line")]
    if _repeats_timing(prev, block):
        return [Problem(Severity.WARNING, file, line,
                        f"timing line repeated (also on line {line - 1}); the first copy is ignored",
                        "delete one of the two lines")]
    return [Problem(Severity.WARNING, file, line, "no blank line before this timing line",
                    "add an empty line above it")]


def _identifier_problems(block: _Block, file: str) -> list[Problem]:
    """The line above a timing line is the cue's identifier and never reaches the dataset.
    Whisper writes none and tools number cues ("12", "sub3"), so one with a space in it is
    most likely words: a cue merged into the next by deleting its timing line and the
    blank line below its text leaves that text there, and it would vanish silently."""
    if block.timing_index() != 1 or not block.lines[0].strip().count(" "):
        return []
    words = block.lines[0].strip()
    return [Problem(Severity.WARNING, file, block.first,
                    f'this line is read as the cue\'s identifier, not as text: "{words[:60]}"',
                    f"if it is said in the recording, move it below the timing line "
                    f"(line {block.first + 1})")]


def _repeats_timing(prev: _Block, block: _Block) -> bool:
    """``prev`` is nothing but the same timing line as ``block``'s, directly above it
    (SOURCES.md #31): a paste slip, not an empty cue."""
    return (prev.cut and prev.timing_index() == len(prev.lines) - 1
            and prev.lines[-1] == block.lines[0])


def _parse_cue_block(block: _Block, file: str) -> tuple[Cue | None, Problem | None]:
    """One cue block through webvtt-py; a timing line it or the W3C rules reject is an
    ERROR naming the line (never a silent drop, SOURCES.md #22 and #27). So are words after
    the times that are no cue setting (every setting is name:value): the cue text's first
    line joined onto the timing line by a deleted line break, which webvtt-py, like a
    browser, ignores as unknown settings."""
    index = block.timing_index() or 0
    line, timing = block.first + index, block.lines[index]
    try:
        captions = webvtt.from_string("\n".join([SIGNATURE, "", *block.lines])).captions
    except (MalformedCaptionError, MalformedFileError):
        captions = []
    times = _SPEC_TIMINGS.match(timing)
    if not captions or not times:
        return None, _timing_problem(timing, line, file)
    words = [w for w in timing[times.end():].split() if ":" not in w]
    if words:
        return None, Problem(Severity.ERROR, file, line,
                             f'text on the timing line: "{" ".join(words)[:60]}"',
                             "move it to the line below the timing line")
    caption = captions[0]
    text_lines = [fold_whitespace(html.unescape(t)) for t in caption.text.split("\n")]
    cue = Cue(start=caption.start_time.in_milliseconds() / 1000,
              end=caption.end_time.in_milliseconds() / 1000,
              text="\n".join(t for t in text_lines if t), line=line)
    return cue, None


def _unknown_tag_problems(block: _Block, file: str) -> list[Problem]:
    """Words in angle brackets that are no WebVTT tag ("the <s> token", "vector<int>",
    "x < 3 and y > 2"): webvtt-py, like a browser, drops everything from a "<" to the next
    ">", so they left the text without a word. The tags are found with webvtt-py's own
    rule (``<.*?>`` per line): the library strips them but does not say which it stripped."""
    first_text = block.first + (block.timing_index() or 0) + 1
    problems = []
    for number, line in enumerate(block.lines[(block.timing_index() or 0) + 1:], first_text):
        unknown = [t for t in _TAG.findall(line) if not _KNOWN_TAG.fullmatch(t)]
        if unknown:
            problems.append(Problem(
                Severity.WARNING, file, number,
                f'"<{unknown[0]}>" is read as a WebVTT tag and left out of the text',
                "if it is said, write < as &lt; and > as &gt;"))
    return problems


def _timing_problem(timing: str, line: int, file: str) -> Problem:
    """A timing line that cannot be read, with the likeliest cause as the hint: a
    character that does not show, an SRT comma, an arrow that is not "-->"."""
    odd = odd_character(timing)
    visible = "".join(c for c in timing if " " <= c <= "~" or c == "\t")
    if ARROW in timing and not _STARTS_WITH_TIME.match(visible):
        hint = 'cue text cannot hold "-->" (it starts a new cue): write "->" or "to" instead'
    elif odd:
        hint = f"it holds {odd}: retype the line as 00:00:01.000 --> 00:00:04.000"
    elif "," in timing:
        hint = "write a full stop before the milliseconds, not a comma (SRT style): 00:00:01.500"
    elif ARROW not in timing:
        hint = 'join the two times with "-->" (two hyphens and >): 00:00:01.000 --> 00:00:04.000'
    else:
        hint = TIMING_HINT
    return Problem(Severity.ERROR, file, line, f'cannot read the timing line "{timing.strip()}"', hint)


def fold_whitespace(text: str) -> str:
    """Runs of any whitespace (incl. no-break spaces from ``&nbsp;``) become one space."""
    return " ".join(text.split())


def drop_rolling_repeats(cues: Sequence[Cue]) -> tuple[list[Cue], list[int]]:
    """Remove the lines that roll-up captions (YouTube auto-captions, SOURCES.md #6) repeat
    from the cue above, and join each cue's lines with a space.

    Roll-up captions show the previous line again as the first line of a 2-line cue. Only
    a file showing that pattern (a multi-line cue whose first line is the previous cue's
    last line) is treated as rolling; Whisper and hand-edited files write one line per cue
    and keep a legitimately repeated "Yes." untouched. Returns the cues and the lines of
    the cues that lost text.
    """
    split = [c.text.split("\n") if c.text else [] for c in cues]
    rolling = any(len(cur) > 1 and prev and cur[0] == prev[-1] for prev, cur in zip(split, split[1:]))
    out, changed = [], []
    for i, cue in enumerate(cues):
        lines = split[i]
        if rolling and i:
            overlap = _repeated_prefix(split[i - 1], lines)
            lines = lines[overlap:]
            if overlap:
                changed.append(cue.line)
        out.append(Cue(cue.start, cue.end, " ".join(lines), cue.line))
    return out, changed


def _repeated_prefix(prev: list[str], cur: list[str]) -> int:
    """How many leading lines of ``cur`` repeat the trailing lines of ``prev``."""
    for n in range(min(len(prev), len(cur)), 0, -1):
        if prev[-n:] == cur[:n]:
            return n
    return 0


# --- validation ------------------------------------------------------------------------

def validate_cues(cues: Sequence[Cue], file: str,
                  audio_duration: float | None = None) -> list[Problem]:
    """Timing and text rules for training data (pure). ``audio_duration`` in seconds, or
    None when unknown (the past-the-end check is then skipped).

    Browsers accept all of these (SOURCES.md notes); training cannot: a chunk is cut from
    the audio by cue times, so a reversed, overlapping, overlong or out-of-range cue pairs
    the wrong audio with the text.
    """
    if not cues:
        return [Problem(Severity.ERROR, file, None, "no cues: this file cannot be used for training",
                        "transcribe the recording (prepare_data.py transcribe) or add cues")]
    problems: list[Problem] = []
    for i, cue in enumerate(cues):
        problems += _cue_problems(cue, file, audio_duration)
        if i:
            problems += _pair_problems(cues[i - 1], cue, file)
    usable = any(c.trainable for c in cues)
    if not usable and not any(p.severity is Severity.ERROR for p in problems):
        # only warnings (empty or zero-length cues), yet build would find nothing to pack
        problems.append(Problem(Severity.ERROR, file, None,
                                "no cue has both text and a length: this file cannot be used for "
                                "training", "type what is said in the cues, or move the recording "
                                "and this file out of the folder"))
    return problems


def _cue_problems(cue: Cue, file: str, audio_duration: float | None) -> list[Problem]:
    def p(severity: Severity, message: str, hint: str) -> Problem:
        return Problem(severity, file, cue.line, message, hint)

    out = []
    if cue.end < cue.start:
        out.append(p(Severity.ERROR, f"cue ends before it starts ({fmt_time(cue.end)} < {fmt_time(cue.start)})",
                     "swap or correct the two times"))
    elif cue.end == cue.start:
        out.append(p(Severity.WARNING, "zero-length cue (left out of the dataset: no audio to pair "
                     "its text with)", "give it an end time after its start"))
    if cue.duration > MAX_CHUNK_S:
        out.append(p(Severity.ERROR, f"cue lasts {cue.duration:.1f} s, longer than Whisper's "
                     f"{MAX_CHUNK_S:.0f} s window", "split this cue in two"))
    if audio_duration is not None and cue.end > audio_duration + PAST_END_TOLERANCE_S:
        out.append(p(Severity.ERROR, f"cue ends at {fmt_time(cue.end)}, after the end of the audio "
                     f"({fmt_time(audio_duration)})", "correct its times or check it is the right recording"))
    words = len(cue.text.split())
    if cue.duration > 0 and words >= MIN_RATE_WORDS and words / cue.duration > MAX_WORDS_PER_S:
        out.append(p(Severity.WARNING, f"{words} words in {cue.duration:.2f} s: faster than anyone "
                     "speaks, so the times are probably wrong", "correct the start or end time"))
    if not cue.has_words:
        what = f'cue text "{cue.text.strip()[:20]}" has no words' if cue.text.strip() else "empty cue text"
        out.append(p(Severity.WARNING, f"{what} (its audio will not be used)",
                     "type what is said, or leave it empty: deleting the cue would put its "
                     "audio in a chunk without its words"))
    return out


def _pair_problems(prev: Cue, cue: Cue, file: str) -> list[Problem]:
    """Order and overlap of two consecutive cues; an overlap shorter than
    ``OVERLAP_WARN_S`` (rounding in a hand edit) only warns."""
    where = f"the cue on line {prev.line}" if prev.line else "the cue before"
    if cue.start < prev.start:
        return [Problem(Severity.ERROR, file, cue.line, f"cue starts before {where} (out of order)",
                        "move it above that cue or correct its times")]
    overlap = prev.end - cue.start
    if overlap <= 0:
        return []
    if cue.end <= prev.end and cue.end > cue.start:
        # a chunk ends at its last cue's end, so a nested cue would cut the one around it short
        return [Problem(Severity.ERROR, file, cue.line, f"cue lies entirely inside {where}",
                        "correct its times or merge the two cues")]
    severity = Severity.WARNING if overlap < OVERLAP_WARN_S else Severity.ERROR
    return [Problem(severity, file, cue.line, f"cue overlaps {where} by {overlap:.3f} s",
                    f"make it start at or after {fmt_time(prev.end)}")]


# Transcript conventions that are not speech: "[inaudible]", "[music]", "[SPEAKER_01]:",
# "[Alba]", and plain speaker labels "SPEAKER 1:". Trained on, Whisper writes them.
_NOT_SPEECH = re.compile(r"\[[^\]]*\]|^\s*speaker[ _]?\w{0,3}\s*:", re.IGNORECASE)


def not_speech_problems(cues: Sequence[Cue], file: str, terms: Sequence[str] = ()) -> list[Problem]:
    """A WARNING per cue holding a marker such as "[inaudible]" or a speaker label: the
    audio has speech (or none) where the text has the marker, so the model would learn to
    write it. A vocabulary term in brackets ("[CLS]") is the person's own word and is fine."""
    problems = []
    for cue in cues:
        terms_at = [span for term in terms for span in find_term(term, cue.text)]
        marker = next((m for m in _NOT_SPEECH.finditer(cue.text)
                       if not any(s < m.end() and m.start() < e for s, e in terms_at)), None)
        if marker:
            problems.append(Problem(Severity.WARNING, file, cue.line,
                                    f'"{marker.group().strip()}" is not what is said: the model '
                                    "would learn to write it", "delete it, or type the words said there"))
    return problems


# --- formatting and writing ------------------------------------------------------------

def fmt_time(seconds: float) -> str:
    """``HH:MM:SS.mmm`` via webvtt-py (rounded to the millisecond, halves up)."""
    try:
        return str(Timestamp.from_seconds(seconds))
    except MalformedCaptionError as e:
        raise ValueError(f"not a caption time: {seconds!r}") from e


def format_vtt(cues: Sequence[Cue], language: str | None = None) -> str:
    """Valid WebVTT for ``cues``, Whisper-style: ``WEBVTT``, a blank line, then one
    ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` block per cue, each ended by a blank line.

    ``language`` (a Whisper code) goes in the header as ``Language: de``, as YouTube's
    captions carry it, so ``build`` can record what was spoken and ``train`` default to it.

    Text is escaped (``&``, ``<``, ``>``) so it reads back as the same plain text; line
    breaks inside a cue's text become spaces (a blank line would end the cue early).
    """
    captions = [webvtt.Caption(start=fmt_time(c.start), end=fmt_time(c.end),
                               text=html.escape(fold_whitespace(c.text), quote=False))
                for c in cues]
    metadata = [f"{LANGUAGE_HEADER}: {language}"] if language else None
    return webvtt.WebVTT(captions=captions, metadata=metadata).content + "\n"


def vtt_language(text: str) -> str | None:
    """The Whisper language code of a VTT header's ``Language:`` line (``de``, ``en-US`` ->
    ``en``), or None: no such line, a language Whisper does not know, or a file webvtt-py
    cannot read (``check`` says why)."""
    from transformers.models.whisper.tokenization_whisper import LANGUAGES

    try:
        header = webvtt.from_buffer(io.StringIO(normalise_newlines(text))).metadata
    except (MalformedFileError, MalformedCaptionError, ValueError):
        return None
    for line in header:
        key, _, value = line.partition(":")
        code = value.strip().split("-")[0].lower()
        if key.strip().lower() == LANGUAGE_HEADER.lower() and code in LANGUAGES:
            return code
    return None


def read_language(path: Path) -> str | None:
    """:func:`vtt_language` of a caption file (one that cannot be read has none)."""
    try:
        return vtt_language(read_utf8(Path(path)))
    except VocabtuneError:
        return None


def write_new_vtt(path: Path, cues: Sequence[Cue], *, force: bool = False,
                  language: str | None = None) -> Path | None:
    """Write ``cues`` to ``path`` atomically, never clobbering a person's edited file.

    - ``path`` absent: written; returns None (nothing needed backing up).
    - ``path`` present, ``force=False``: raises :class:`VocabtuneError` and touches nothing
      (also when another process creates the file while we write).
    - ``path`` present, ``force=True``: the old file is first *copied* to
      ``<stem>.<YYYYmmdd-HHMMSS>.bak.vtt`` beside it (:func:`vocabtune.backups.keep_backup`:
      exact bytes, an existing backup of the same second is never overwritten), then the new
      file is renamed over it, so the person's file is never missing. Returns the backup's
      path so the caller can tell the person where their old text went.
    """
    path = Path(path)
    try:
        backup = write_new(path, format_vtt(cues, language), force=force)
    except FileExistsError:
        raise VocabtuneError("caption file already exists; not overwriting it", file=path,
                             hint="it may hold your corrections: use --force to redo it "
                                  "(the old file is kept as a .bak.vtt)") from None
    if backup:
        log.info("kept the old %s as %s", path.name, backup.name)
    return backup
