"""Captions: parsing (real webvtt-py), line numbers, validation rules, formatting, safe
writes, and every shared real-world fixture handled as SOURCES.md (and issue 2) say."""

from __future__ import annotations

import os

import pytest
import webvtt

from vocabtune.captions import (PAST_END_TOLERANCE_S, drop_rolling_repeats, format_vtt,
                                normalise_newlines, not_speech_problems, parse_vtt, read_vtt,
                                split_blocks, validate_cues, write_new_vtt)
from vocabtune.check import caption_problems
from vocabtune.config import MAX_CHUNK_S, OVERLAP_WARN_S
from vocabtune.errors import VocabtuneError
from vocabtune.fsutil import atomic_write_bytes, atomic_write_text
from vocabtune.schema import Cue, Problem, Severity


def errors(problems):
    return [(p.line, p.message) for p in problems if p.severity is Severity.ERROR]


def warnings(problems):
    return [(p.line, p.message) for p in problems if p.severity is Severity.WARNING]


def lines_of(problems, severity):
    return [p.line for p in problems if p.severity is severity]


# --- parsing ---------------------------------------------------------------------------

def test_whisper_output_parses_to_plain_cues_with_timing_lines():
    text = "WEBVTT\n\n00:00.000 --> 00:02.500\n Hello   world \n\n01:00:01.000 --> 01:00:02.000\nbye\n\n"
    cues, problems = parse_vtt(text, "a.vtt")
    assert problems == []
    assert cues == [Cue(0.0, 2.5, "Hello world", 3), Cue(3601.0, 3602.0, "bye", 6)]


def test_tags_removed_before_entities_decoded():
    text = ("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Kyle>So &lt;b&gt; is <b>bold</b> &amp; "
            "<c.red>red</c><00:01.500> done&nbsp;now\n")
    (cue,), problems = parse_vtt(text)
    assert cue.text == "So <b> is bold & red done now"
    assert problems == []


def test_words_in_angle_brackets_that_are_no_tag_are_warned_about():
    # webvtt-py drops everything from "<" to the next ">": "the <s> token" lost its "<s>"
    text = ("WEBVTT\n\n00:01.000 --> 00:02.000\n<v Kyle>the <i>end</i> <c.red>of</c><00:01.500> it\n\n"
            "00:03.000 --> 00:04.000\nthe first line\nthe <s> token and x < 3 and y > 2\n")
    cues, problems = parse_vtt(text)
    assert cues[1].text == "the first line the token and x 2"
    assert warnings(problems) == [(8, '"<s>" is read as a WebVTT tag and left out of the text')]
    assert "&lt;" in problems[0].hint


def test_markers_that_are_not_speech_are_warned_about_but_terms_in_brackets_are_not():
    cues = [Cue(0, 1, "the [inaudible] model", 3), Cue(1, 2, "SPEAKER 1: hello", 6),
            Cue(2, 3, "the [CLS] token", 9), Cue(3, 4, "plain (and fine) text", 12)]
    problems = not_speech_problems(cues, "a.vtt", ["[CLS]"])
    assert [(p.line, p.message) for p in problems] == [
        (3, '"[inaudible]" is not what is said: the model would learn to write it'),
        (6, '"SPEAKER 1:" is not what is said: the model would learn to write it')]
    assert all(p.severity is Severity.WARNING for p in problems)
    assert len(not_speech_problems(cues, "a.vtt")) == 3


def test_a_cue_with_more_words_than_its_time_allows_is_warned_about():
    # "00:00:07.282" typed for "00:00:11.282": 11 words said in 1.1 s
    text = "The SFTTrainer class in TRL handles supervised fine-tuning on chat data."
    cues = [Cue(6.163, 7.282, text, 3), Cue(8.0, 9.0, "Yes, okay, right, go.", 6),
            Cue(11.7, 16.8, text, 9)]
    assert warnings(validate_cues(cues, "a.vtt")) == [
        (3, "11 words in 1.12 s: faster than anyone speaks, so the times are probably wrong")]


def test_an_empty_cue_is_not_to_be_deleted():
    # an empty cue ends a chunk, so its audio is left out; a deleted one's audio would lie
    # inside the chunk around it with no words for it (segments.pack_cues)
    (problem,) = validate_cues([Cue(0, 1, "a", 3), Cue(1, 2, "", 6), Cue(2, 3, "b", 9)], "a.vtt")
    assert problem.message.startswith("empty cue text") and problem.line == 6
    assert "delete the cue" not in problem.hint and "leave it empty" in problem.hint


def test_line_numbers_count_cr_and_crlf_as_editors_do(data_dir):
    cues, problems = read_vtt(data_dir / "vtt" / "bom_crlf_cr.vtt")
    assert problems == []
    assert [(c.line, c.text) for c in cues] == [(3, "first & only second <b> line"), (7, "third")]


def test_lines_of_spaces_between_cues_are_blank_lines():
    # an editor that keeps trailing spaces leaves "   " lines between cues; by the W3C rule
    # they are not blank, so the identifier "2" was glued to the text above ("hello 2")
    text = ("WEBVTT   \n   \n1\n00:01.000 --> 00:02.000   \nhello  \n \t \n"
            "2\n00:03.000 --> 00:04.000\nworld\n")
    cues, problems = parse_vtt(text)
    assert [(c.line, c.text) for c in cues] == [(4, "hello"), (8, "world")]
    assert problems == []
    # inside a STYLE or NOTE block such a line is the block's own, as the spec reads it
    text = ("WEBVTT\n\nSTYLE\n::cue {\n  color: red;\n  \n}\n\nNOTE a note\n \nits second line\n\n"
            "00:01.000 --> 00:02.000\nhello\n")
    assert parse_vtt(text) == ([Cue(1.0, 2.0, "hello", 13)], [])


def test_words_above_a_timing_line_are_not_lost_silently():
    # merging two cues by deleting the first one's timing line and the blank line below
    # its text leaves that text where an identifier goes: webvtt-py drops it
    text = ("WEBVTT\n\nHellaSwag asks the model.\n00:00:00.700 --> 00:00:11.200\n"
            "The SFTTrainer class.\n\n12\n00:00:12.000 --> 00:00:13.000\nnumbered\n")
    cues, problems = parse_vtt(text)
    assert [c.text for c in cues] == ["The SFTTrainer class.", "numbered"]
    assert warnings(problems) == [(3, 'this line is read as the cue\'s identifier, not as text: '
                                      '"HellaSwag asks the model."')]
    assert "line 4" in problems[0].hint


def test_broken_timing_and_lost_text_are_errors_with_lines(data_dir):
    cues, problems = read_vtt(data_dir / "vtt" / "broken_timing.vtt")
    assert [c.text for c in cues] == ["kept", "kept too"]
    assert [line for line, _ in errors(problems)] == [6, 9]
    assert "00:00:0x.500" in errors(problems)[0][1]
    assert "text without a timing line" in errors(problems)[1][1]


def test_editor_slips_are_warnings_and_a_pasted_timing_line_is_one_cue(data_dir):
    cues, problems = read_vtt(data_dir / "vtt" / "editor_slips.vtt")
    assert [(c.line, c.text) for c in cues] == [(2, "one"), (4, "two"), (8, "three")]
    assert errors(problems) == []
    assert [line for line, _ in warnings(problems)] == [2, 4, 8]
    assert "repeated (also on line 7)" in warnings(problems)[2][1]


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("\n\nWEBVTT\n\n00:01.000 --> 00:02.000\nx\n", "blank line before WEBVTT"),
    ("00:01.000 --> 00:02.000\nx\n", "missing WEBVTT header"),
    ("WEBVTTX\n\n00:01.000 --> 00:02.000\nx\n", "is not a WebVTT header"),
])
def test_bad_signature_is_one_error_on_line_1(text, message):
    cues, problems = parse_vtt(text, "f.vtt")
    assert cues == []
    assert [(p.severity, p.line) for p in problems] == [(Severity.ERROR, 1)]
    assert message in problems[0].message


@pytest.mark.parametrize("timing, ok", [
    ("0:00:01.000 --> 0:00:02.000", True),        # 1-digit hours are fine (W3C parser)
    ("123:00:01.000 --> 123:00:02.000", True),
    ("00:0:01.000 --> 00:00:02.000", False),      # webvtt-py alone would accept these
    ("00:00:01.00 --> 00:00:02.000", False),
    ("00:00:01.000 --> 00:00:02.0000", False),
    ("00:61:01.000 --> 00:61:02.000", False),
])
def test_timestamp_field_widths_follow_the_w3c_parser(timing, ok):
    cues, problems = parse_vtt(f"WEBVTT\n\n{timing}\ntext\n")
    assert (len(cues), not problems) == ((1, True) if ok else (0, False))
    if not ok:
        assert problems[0].line == 3


@pytest.mark.parametrize("timing, hint", [
    # a word processor's no-break space or dash, a zero-width space: the line looks right
    ("00:03.000\u00a0--> 00:04.000", "U+00A0 (no-break space)"),
    ("00:03.000 \u2013> 00:04.000", "U+2013 (en dash)"),
    ("00:03.000 --> 00:04.000\u200b", "U+200B (zero width space)"),
    ("\u200b00:03.000 --> 00:04.000", "U+200B (zero width space)"),
    ("00:03,000 --> 00:04,000", "not a comma"),
    ("00:03.000 -> 00:04.000", 'join the two times with "-->"'),
    ("00:03.000 00:04.000", 'join the two times with "-->"'),
    ("A --> B is the mapping", 'cue text cannot hold "-->"'),
])
def test_an_unreadable_timing_line_says_why(timing, hint):
    cues, problems = parse_vtt(f"WEBVTT\n\n00:01.000 --> 00:02.000\nhello\n\n{timing}\nworld\n")
    assert [c.text for c in cues] == ["hello"]
    (line, message), = errors(problems)
    assert (line, message) == (6, f'cannot read the timing line "{timing.strip()}"')
    assert hint in next(p.hint for p in problems if p.line == 6 and p.severity is Severity.ERROR)


@pytest.mark.parametrize("first, hint", [
    ("\u200bWEBVTT", "U+200B (zero width space)"),
    ("webvtt", "must start with WEBVTT exactly"),
    ("WEBVTT:", "must start with WEBVTT exactly"),
])
def test_a_header_that_is_nearly_webvtt_says_why(first, hint):
    _, (problem,) = parse_vtt(f"{first}\n\n00:01.000 --> 00:02.000\nhello\n")
    assert problem.message == f'the first line "{first}" is not a WebVTT header'
    assert hint in problem.hint


@pytest.mark.parametrize("timing", ["00:01.000 --> 00:02.000 The SFTTrainer",
                                    "00:01.000 --> 00:02.000 align:start The SFTTrainer"])
def test_text_joined_onto_the_timing_line_is_an_error_not_lost(timing):
    # a deleted line break: webvtt-py took "The SFTTrainer" for cue settings and dropped it
    cues, problems = parse_vtt(f"WEBVTT\n\n{timing}\nclass in TRL\n\n00:03.000 --> 00:04.000\nb\n")
    assert [c.text for c in cues] == ["b"]
    assert errors(problems) == [(3, 'text on the timing line: "The SFTTrainer"')]


def test_note_style_and_space_only_blocks_are_not_lost_text():
    text = ("WEBVTT\n\nSTYLE\n::cue { color: red }\n\nNOTE a comment\nover lines\n\n   \n\n"
            "   \n7\n00:01.000 --> 00:02.000\nhello\n")
    cues, problems = parse_vtt(text)
    assert [(c.line, c.text) for c in cues] == [(13, "hello")]
    assert problems == []


def test_rolling_captions_lose_their_repeated_lines():
    cues = [Cue(0, 1, "we are\nrolling", 3), Cue(1, 2, "rolling\nalong now", 6), Cue(2, 3, "along now", 9)]
    out, changed = drop_rolling_repeats(cues)
    assert [c.text for c in out] == ["we are rolling", "along now", ""]
    assert changed == [6, 9]


def test_one_line_cues_are_never_treated_as_rolling():
    cues = [Cue(0, 1, "Yes.", 3), Cue(1, 2, "Yes.", 6)]
    assert [c.text for c in drop_rolling_repeats(cues)[0]] == ["Yes.", "Yes."]


def test_newline_normalisation():
    assert normalise_newlines("\ufeffa\r\nb\rc\n\rd") == "a\nb\nc\n\nd"


# --- validation ------------------------------------------------------------------------

@pytest.mark.parametrize("cues, severity, words", [
    ([Cue(2.0, 1.0, "x", 3)], Severity.ERROR, "ends before it starts"),
    ([Cue(0.0, 0.5, "w", 1), Cue(1.0, 1.0, "x", 3)], Severity.WARNING, "zero-length"),
    ([Cue(0.0, MAX_CHUNK_S + 0.001, "x", 3)], Severity.ERROR, "longer than"),
    ([Cue(0.0, 0.5, "w", 1), Cue(1.0, 2.0, "  ", 3)], Severity.WARNING, "empty cue text"),
    ([Cue(5.0, 6.0, "a", 3), Cue(1.0, 2.0, "b", 6)], Severity.ERROR, "out of order"),
    ([Cue(0.0, 3.0, "a", 3), Cue(2.0, 4.0, "b", 6)], Severity.ERROR, "overlaps the cue on line 3"),
    ([Cue(0.0, 3.0, "a", 3), Cue(3.0 - OVERLAP_WARN_S / 2, 4.0, "b", 6)], Severity.WARNING, "overlaps"),
    ([], Severity.ERROR, "no cues"),
])
def test_each_rule_fires(cues, severity, words):
    problems = validate_cues(cues, "f.vtt")
    assert len(problems) == 1
    assert problems[0].severity is severity and words in problems[0].message
    assert problems[0].line == (cues[-1].line if cues else None)


def test_thirty_second_cue_is_fine_and_hint_says_split():
    assert validate_cues([Cue(0.0, MAX_CHUNK_S, "x", 3)], "f") == []
    (p,) = validate_cues([Cue(0.0, 31.0, "x", 3)], "f")
    assert p.hint == "split this cue in two"


def test_cue_past_the_end_of_the_audio():
    cues = [Cue(0.0, 10.0 + PAST_END_TOLERANCE_S, "x", 3), Cue(10.1, 11.0, "y", 6)]
    problems = validate_cues(cues, "f.vtt", audio_duration=10.0)
    assert [(p.line, p.severity) for p in problems] == [(6, Severity.ERROR)]
    assert "after the end of the audio" in problems[0].message
    assert validate_cues(cues, "f.vtt", audio_duration=None) == []


def test_clean_cues_have_no_problems():
    assert validate_cues([Cue(0, 1, "a", 3), Cue(1, 2, "b", 6)], "f", audio_duration=2.0) == []


# --- formatting ------------------------------------------------------------------------

def test_format_is_whisper_style():
    text = format_vtt([Cue(0.5, 61.25, "Hello"), Cue(3600, 3601.5, "a < b & c")])
    assert text == ("WEBVTT\n\n00:00:00.500 --> 00:01:01.250\nHello\n\n"
                    "01:00:00.000 --> 01:00:01.500\na &lt; b &amp; c\n\n")
    assert format_vtt([]) == "WEBVTT\n\n"


def test_format_parse_round_trip():
    cues = [Cue(0.0, 1.5, "Mixtral 8x7B <3 & more --> arrows"), Cue(1.5, 2.0, ""),
            Cue(2.0, 3.001, "مرحبا بالعالم ..."), Cue(3723.456, 3725.0, "two\nlines")]
    back, problems = parse_vtt(format_vtt(cues))
    assert [(c.start, c.end, c.text) for c in back] == [
        (c.start, c.end, " ".join(c.text.split())) for c in cues]
    assert problems == []


def test_format_rejects_negative_times():
    with pytest.raises(ValueError):
        format_vtt([Cue(-1.0, 1.0, "x")])


# --- writing ---------------------------------------------------------------------------

def test_write_new_vtt_creates_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "train.vtt"
    assert write_new_vtt(path, [Cue(0, 1, "first")]) is None
    original = path.read_bytes()
    with pytest.raises(VocabtuneError, match="already exists"):
        write_new_vtt(path, [Cue(0, 1, "second")])
    assert path.read_bytes() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.vtt"]


def test_force_keeps_the_old_bytes_as_a_timestamped_backup(tmp_path):
    path = tmp_path / "train.vtt"
    edited = b"WEBVTT\r\n\r\n00:00.000 --> 00:01.000\r\nmy hand edit\r\n"
    path.write_bytes(edited)
    first = write_new_vtt(path, [Cue(0, 1, "redone")], force=True)
    path.write_bytes(edited + b"again")
    second = write_new_vtt(path, [Cue(0, 1, "redone twice")], force=True)
    assert first.read_bytes() == edited and second.read_bytes() == edited + b"again"
    assert first != second                     # same second: the first backup is not clobbered
    assert first.name.startswith("train.") and first.name.endswith(".bak.vtt")
    assert read_vtt(path)[0][0].text == "redone twice"


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "out.vtt"
    path.write_text("old")

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.vtt"]


def test_atomic_write_no_clobber_and_exact_bytes(tmp_path):
    path = tmp_path / "x.bin"
    atomic_write_bytes(path, b"a\r\nb")
    assert path.read_bytes() == b"a\r\nb"
    with pytest.raises(FileExistsError):
        atomic_write_bytes(path, b"other", overwrite=False)
    assert path.read_bytes() == b"a\r\nb" and len(list(tmp_path.iterdir())) == 1


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_write_gives_open_s_mode_and_keeps_an_existing_one(tmp_path):
    """mkstemp's private 0600 must not leak into a person's VTT or dataset card."""
    mask = os.umask(0o022)
    os.umask(mask)
    new = atomic_write_text(tmp_path / "new.vtt", "WEBVTT\n")
    assert new.stat().st_mode & 0o777 == 0o666 & ~mask
    kept = tmp_path / "kept.vtt"
    kept.write_text("old")
    kept.chmod(0o640)
    atomic_write_text(kept, "WEBVTT\n")
    assert kept.stat().st_mode & 0o777 == 0o640


# --- every shared real-world fixture (../shared/fixtures/vtt, see SOURCES.md) -----------
# (file, cues kept, error lines, warning lines) from parse + validation without audio.
# Where SOURCES.md says "accept" but errors are listed, issue 2 rules: overlaps of
# >= OVERLAP_WARN_S (#11, #16, #26, #27) and cues over 30 s (#9, #12) are errors.
TS_TOO_SHORT_LINES = list(range(6, 94, 3)) + [96]
# speaker labels ("[SPEAKER_01]:", "[Alba]") and sound notes ("[ríen emocionadas]") are not
# speech: a warning per cue (the Netflix file has 103; its table entry is that count)
SPEAKER_LINES = list(range(3, 43, 3))
FIXTURES = [
    ("whisper_openai_jfk", 1, [], []),
    ("whisper2022_leading_space_wrapped_lines", 44, [], []),
    ("whisper_fr_sample_1s_cues", 23, [], []),
    ("fasterwhisper_diarization_speaker_prefix_ca", 14, [], SPEAKER_LINES),
    ("stable_ts_inline_word_timestamps", 5, [], []),
    ("youtube_dl_auto_captions_excerpt", 4, [], [16, 19, 22]),
    ("netflix_es_old_settings_notes", 865, [], 103),
    ("notes_header_text_cue_ids_sv", 3, [], []),
    ("style_block_ids_entity_long_cue_fr", 6, [49], [41, 49]),   # "---" cues: no words
    ("bom_no_trailing_newline", 4, [], []),
    ("mixed_cr_lf_crlf_newlines", 4, [8, 12, 16], []),
    ("chapters_cues_over_30s", 9, [14, 18, 22, 26, 30, 34, 38, 42], []),
    ("arabic_rtl_captions_ellipses", 77, [], []),
    ("voice_tags_talk_transcript", 15, [], [6]),      # 9 words in 1 s: rough hand timing
    ("entities_misnested_tags", 4, [], []),
    ("overlapping_cues", 4, [6, 12], []),
    ("cue_settings_valid_and_invalid", 8, [], []),
    ("hls_timestamp_map_266_hours", 2, [], []),
    ("header_only_no_newline", 0, [None], []),
    ("empty_zero_bytes", 0, [1], []),
    ("missing_webvtt_header", 0, [1], []),
    ("bad_timestamp_letter_in_seconds", 6, [6], []),
    ("empty_cue_text", 5, [], [6]),
    ("text_block_without_timing", 6, [6], []),
    ("end_before_start_and_zero_length", 4, [6, 9, 12], [3]),
    ("mixed_hours_and_hoursless_timestamps", 3, [6, 9], []),
    ("timestamps_too_few_digits", 2, TS_TOO_SHORT_LINES, []),
    ("header_immediately_followed_by_timing", 1, [], [2]),
    ("karaoke_id_right_after_header_duplicate_ids", 3, [], [3]),
    ("blank_line_before_signature", 0, [1], []),
    ("cues_without_blank_separator", 3, [], [5, 9]),
]


def test_fixture_table_covers_every_shared_file(vtt_fixtures):
    assert sorted(p.stem for p in vtt_fixtures.glob("*.vtt")) == sorted(f[0] for f in FIXTURES)


@pytest.mark.shared
@pytest.mark.parametrize("name, n_cues, error_lines, warning_lines", FIXTURES,
                         ids=[f[0] for f in FIXTURES])
def test_shared_fixture(vtt_fixtures, name, n_cues, error_lines, warning_lines):
    path = vtt_fixtures / f"{name}.vtt"
    cues, parse_problems = read_vtt(path)
    problems = caption_problems(cues, parse_problems, str(path), None)
    assert len(cues) == n_cues
    assert lines_of(problems, Severity.ERROR) == error_lines
    warned = lines_of(problems, Severity.WARNING)
    assert (len(warned) if isinstance(warning_lines, int) else warned) == warning_lines
    assert all(p.file == str(path) and p.hint for p in problems)


@pytest.mark.shared
@pytest.mark.parametrize("name, index, text", [
    ("bom_no_trailing_newline", 0, None),
    ("entities_misnested_tags", 3, "This is the <fourth> &subtitle."),
    ("stable_ts_inline_word_timestamps", 0, "It is with the greatest of risks that I commit this recording."),
    ("fasterwhisper_diarization_speaker_prefix_ca", 0, "[SPEAKER_"),
    ("voice_tags_talk_transcript", 1, "Okay, we're good now. Oh, now we're good? Laughter"),
    ("youtube_dl_auto_captions_excerpt", 1, "what"),
    ("mixed_cr_lf_crlf_newlines", 3, "text3"),
    ("karaoke_id_right_after_header_duplicate_ids", 1, "Like a big-a pizza pie"),
    ("whisper2022_leading_space_wrapped_lines", 0,
     "Would you like to have extra material as exercises for vocabulary and grammar?"),
])
def test_shared_fixture_texts(vtt_fixtures, name, index, text):
    cue = read_vtt(vtt_fixtures / f"{name}.vtt")[0][index]
    if text is None:                      # the BOM must not leak into the first cue
        assert "\ufeff" not in cue.text and cue.text
    elif text.endswith("_"):
        assert cue.text.startswith(text)
    else:
        assert cue.text == text


@pytest.mark.shared
def test_arabic_text_round_trips_unchanged(vtt_fixtures, tmp_path):
    cues, _ = read_vtt(vtt_fixtures / "arabic_rtl_captions_ellipses.vtt")
    write_new_vtt(tmp_path / "ar.vtt", cues)
    assert read_vtt(tmp_path / "ar.vtt")[0] == [
        Cue(c.start, c.end, c.text, 3 * i + 3) for i, c in enumerate(cues)]


@pytest.mark.shared
def test_block_split_agrees_with_webvtt_py(vtt_fixtures):
    """Our line-numbered blocks must be the blocks webvtt-py itself forms: each cue block
    parsed alone gives exactly the captions of webvtt-py's whole-file parse."""
    for path in sorted(vtt_fixtures.glob("*.vtt")):
        text = normalise_newlines(path.read_bytes().decode("utf-8-sig"))
        try:
            whole = webvtt.from_string(text).captions
        except webvtt.errors.MalformedFileError:
            continue
        blocks = split_blocks(text.split("\n"))[1:]
        alone = [c for b in blocks if b.timing_index() is not None
                 for c in webvtt.from_string("WEBVTT\n\n" + "\n".join(b.lines)).captions]
        assert [(c.start, c.end, c.raw_text) for c in alone] == \
               [(c.start, c.end, c.raw_text) for c in whole], path.name


def test_a_vtt_not_in_utf8_is_one_error_with_its_line(tmp_path):
    latin = tmp_path / "latin.vtt"
    latin.write_bytes("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nGröße\n".encode("latin-1"))
    assert read_vtt(latin) == ([], [Problem(Severity.ERROR, str(latin), 4,
                                            "not UTF-8 text (byte 0xf6 at offset 40)",
                                            "save the file as UTF-8 in your editor")])
    utf16 = tmp_path / "utf16.vtt"
    utf16.write_bytes("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nhi\n".encode("utf-16"))
    (problem,) = read_vtt(utf16)[1]
    assert (problem.line, problem.message) == (1, "saved as UTF-16, not UTF-8")
    (problem,) = read_vtt(tmp_path / "missing.vtt")[1]
    assert problem.message.startswith("cannot read the file (") and problem.line is None
