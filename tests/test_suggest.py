"""Correction suggestions: spoken forms, the matcher on tricky cases, and the command's
file handling (never touching the person's VTT unless asked and confirmed)."""

from __future__ import annotations

from pathlib import Path

import pytest

import prepare_data
from vocabtune.errors import VocabtuneError
from vocabtune.common_words import is_common_word
from vocabtune.matching import Matcher, stand_in
from vocabtune.schema import Term
from vocabtune.spoken import number_words, spoken_key, spoken_words
from vocabtune.suggest import suggest_command, suggested_path


def match(text: str, *terms: str | Term) -> list[tuple[str, str]]:
    """(found, term) pairs the matcher suggests for ``text``."""
    vocab = [t if isinstance(t, Term) else Term(t) for t in terms]
    return [(s.found, s.term) for s in Matcher(vocab).suggest(text)]


# --- spoken forms ----------------------------------------------------------------------

@pytest.mark.parametrize("written, said", [
    ("Mixtral 8x7B", "mixtral eight by seven b"),
    ("mixed role 8 by 7 B", "mixed role eight by seven b"),
    ("8 x 7B", "eight by seven b"),
    ("7B", "seven b"),
    ("10.7B", "ten point seven b"),
    ("V3", "v three"),
    ("DeepSeek-V3", "deep seek v three"),
    ("MMLU", "m m l u"),
    ("M.M.L.U.", "m m l u"),
    ("GGUF", "g g u f"),
    ("llama.cpp", "llama dot cpp"),
    ("Phi-2", "phi two"),
    ("vLLM", "v l l m"),
    ("Yi-34B", "yi thirty four b"),
    ("2048", "two thousand forty eight"),
    ("version 007", "version zero zero seven"),
    ("It ended. Next", "it ended next"),          # a sentence dot is not "dot"
    ("naïve Zürich", "naïve zürich"),
    ("don't", "dont"),
    ("5% & more", "five percent and more"),
    # a unit after a number is said as its name; letters elsewhere stay letters
    ("Ramipril 5 mg", "ramipril five milligrams"),
    ("16GB", "sixteen gigabytes"),
    ("5G and MG", "five g and m g"),
    ("C# and F#", "c sharp and f sharp"),
    (".NET and ASP.NET", "dot n e t and a s p dot n e t"),   # a dot opening a name is said
    ("wait...so", "wait so"),
    ("§ 230 and ¶ 4", "section two hundred thirty and paragraph four"),
])
def test_spoken_words(written: str, said: str) -> None:
    assert spoken_words(written) == said.split()


def test_number_words_cover_scales() -> None:
    assert number_words("0") == ["zero"]
    assert number_words("115") == ["one", "hundred", "fifteen"]
    assert number_words("1000000") == ["one", "million"]
    assert number_words("70000000000") == ["seventy", "billion"]


def test_spoken_key_ignores_word_breaks() -> None:
    assert spoken_key("deep seek") == spoken_key("DeepSeek") == "deepseek"
    assert spoken_key("M M L U") == spoken_key("MMLU")


# --- the matcher -----------------------------------------------------------------------

def test_multi_word_mishearing_of_a_term_with_numbers() -> None:
    assert match("I ran mixed role 8 by 7 B on my laptop.", "Mixtral 8x7B", "Mistral 7B") == [
        ("mixed role 8 by 7 B", "Mixtral 8x7B")]


def test_spoken_numbers_and_hyphens() -> None:
    assert match("We tried fi 2 and Phi two.", "Phi-2") == [("fi 2", "Phi-2"), ("Phi two", "Phi-2")]
    assert match("Solar ten point seven B is large.", "SOLAR 10.7B") == [
        ("Solar ten point seven B", "SOLAR 10.7B")]
    assert match("deep seek V three came out.", "DeepSeek-V3") == [("deep seek V three", "DeepSeek-V3")]


def test_acronyms_spelt_out_and_near_misses() -> None:
    assert match("The M M L U score went up.", "MMLU") == [("M M L U", "MMLU")]
    assert match("Save it as G-G-U-F or GGUV, then load it.", "GGUF") == [("G-G-U-F", "GGUF"), ("GGUV", "GGUF")]
    assert match("Run it with Lama CPP tonight.", "llama.cpp") == [("Lama CPP", "llama.cpp")]


def test_case_restored_as_in_vocab() -> None:
    assert match("we serve it with VLLM today", "vLLM") == [("VLLM", "vLLM")]
    assert match("the tiny llama model", "TinyLlama") == [("tiny llama", "TinyLlama")]


def test_opening_marks_of_other_languages_stay_in_the_text() -> None:
    # replacing "¿Muños Peña" by the term dropped the "¿" from the caption
    assert match("¿Muños Peña? ¡Agensia Tributaria!", "Muñoz Peña", "Agencia Tributaria") == \
        [("Muños Peña", "Muñoz Peña"), ("Agensia Tributaria", "Agencia Tributaria")]


def test_an_elided_article_stays_in_the_text() -> None:
    # "d'insufisance rénale" became "insuffisance rénale": the "d'" was deleted
    assert match("c'est d'insufisance rénale, puis l’échografie cardiaque", "insuffisance rénale",
                 "échographie cardiaque") == [("insufisance rénale", "insuffisance rénale"),
                                              ("échografie cardiaque", "échographie cardiaque")]
    assert match("chez L'Oreal", "L'Oréal") == [("L'Oreal", "L'Oréal")]   # its own elision


def test_text_already_spelt_right_is_left_alone() -> None:
    assert match("Mistral 7B and Mixtral 8x7B and vLLM.", "Mixtral 8x7B", "Mistral 7B", "vLLM") == []
    assert match("We used LoRA, not QLoRA.", "LoRA", "QLoRA") == []


def test_a_term_inside_a_longer_word_is_not_suggested() -> None:
    assert match("The exploration of the data took a day.", "LoRA") == []
    assert match("Helicopters and polarity are words.", "Phi-2", "SOLAR 10.7B", "RoPE") == []


def test_common_word_alone_is_never_replaced() -> None:
    assert is_common_word("rope") and is_common_word("Queen's")
    assert match("Tie the rope to the post.", "RoPE") == []     # exact, but an ordinary word
    assert match("The queen went home.", "Qwen") == []
    assert match("When it rains we stay in.", "Qwen") == []


def test_alias_names_a_common_word() -> None:
    qwen = Term("Qwen", aliases=("queen",))
    assert match("The queen model answered.", qwen) == [("queen", "Qwen")]
    rope = Term("RoPE", aliases=("rope",))       # the alias says exactly what the term says
    assert match("We used rope scaling.", rope) == [("rope", "RoPE")]


def test_partial_alias_stands_in_for_its_part_of_the_term() -> None:
    term = Term("Mixtral 8x7B", aliases=("mixed role",))
    assert stand_in("mixtral eight by seven b".split(), ["mixed", "role"]) == \
        "mixed role eight by seven b".split()
    assert match("We ran mixed role eight by seven b overnight.", term) == [
        ("mixed role eight by seven b", "Mixtral 8x7B")]
    assert match("The mixed role worked.", term) == [("mixed role", "Mixtral 8x7B")]


def test_overlapping_candidates_keep_the_best_one() -> None:
    # "Q Laura" could be LoRA (just "Laura") or QLoRA (both words): the better one wins
    assert match("We tuned it with Q Laura.", "LoRA", "QLoRA") == [("Q Laura", "QLoRA")]
    # a candidate may grow around an exact term into a longer term that contains it
    assert match("Q-LoRA saves memory.", "LoRA", "QLoRA") == [("Q-LoRA", "QLoRA")]
    assert match("We ran Llama 3 point 1 today.", "Llama 3", "Llama 3.1") == [
        ("Llama 3 point 1", "Llama 3.1")]


def test_a_right_term_and_the_next_word_are_not_grown_into_a_longer_term() -> None:
    terms = ("GPT-4", "GPT-4o", "LoRA", "QLoRA", "Llama 3", "Llama 3.1")
    assert match("I compared GPT-4 and Llama on this.", *terms) == []
    assert match("We tried GPT-4 on it, then LoRA on top.", *terms) == []
    assert match("We ran Llama 3 one more time.", *terms) == []
    assert match("LoRA, a cheap method; QLoRA, a cheaper one.", *terms) == []


def test_suggestions_applied_once_leave_nothing_to_suggest() -> None:
    terms = ("GPT-4", "GPT-4o")
    text = "We compared GPT 4 and GPT 4o."
    found = Matcher([Term(t) for t in terms]).suggest(text)
    assert [(s.found, s.term) for s in found] == [("GPT 4", "GPT-4"), ("GPT 4o", "GPT-4o")]
    for s in reversed(found):
        text = text[:s.start] + s.term + text[s.end:]
    assert text == "We compared GPT-4 and GPT-4o."
    assert match(text, *terms) == []


def test_a_near_miss_never_changes_a_number_or_the_final_letter() -> None:
    """Doses, versions and variants tell terms apart: a sound-alike must not swap them."""
    clinic = ("atorvastatin 40 mg", "SGLT2 inhibitor", "CKD stage 3b", "troponin I", "5-FU", "Yi-34B")
    for text in ("Start atorvastatin 20 mg tonight.", "Add an SGLT1 inhibitor today.",
                 "She has CKD stage 3a now.", "We measured troponin T twice.",
                 "Then 5-ASA was given.", "It was Yi 34 on the chart."):
        assert match(text, *clinic) == [], text
    assert [t for _, t in match("Start atorvastatin forty milligrams tonight.", *clinic)] == [
        "atorvastatin 40 mg"]                                          # the number said in words
    assert match("We ran mixed role eight by seven be.", "Mixtral 8x7B") == [
        ("mixed role eight by seven be", "Mixtral 8x7B")]               # a letter's name for it
    assert match("She has C K D stage three B now.", *clinic) == [("C K D stage three B", "CKD stage 3b")]
    assert match("We measured troponen I twice.", *clinic) == [("troponen I", "troponin I")]
    assert match("The E34B model.", *clinic) == [("E34B", "Yi-34B")]
    dose = Term("atorvastatin 40 mg", aliases=("lipitor forty",))        # an alias may say it otherwise
    assert match("Take lipitor forty daily.", dose) == [("lipitor forty", "atorvastatin 40 mg")]
    stage = Term("CKD stage 3b", aliases=("C K D stage three B",))        # ... but not a near miss of it
    assert match("She has CKD stage 3a now.", stage) == []


def test_everyday_words_counting_something_are_no_code_with_digits() -> None:
    codes = ("HER2", "A1", "B12", "Form S-1")
    for text in ("She took her two kids.", "It was a one off.", "Let it be twelve.",
                 "Fill in the form as one."):
        assert match(text, *codes) == [], text
    assert match("It is her 2 positive.", *codes) == [("her 2", "HER2")]    # digits: the code
    assert match("It is HER two positive.", *codes) == [("HER two", "HER2")]


def test_a_shorter_name_of_the_family_is_not_grown_into_the_term() -> None:
    """The term's first words said right, then nothing or words unlike the rest: another
    member of the family. A word of the term cut short, or its last word misheard, is not."""
    family = ("iPhone 15 Pro", "Claude 3 Opus", "Wi-Fi 6E", "SmolLM", "Hugging Face")
    for text in ("My iPhone 15 is new.", "We used Claude 3 today.", "The Wi-Fi is slow."):
        assert match(text, *family) == [], text
    assert match("the Smol model on hugging phase", *family) == [
        ("Smol", "SmolLM"), ("hugging phase", "Hugging Face")]
    assert match("an iPhone 15 pro", *family) == [("iPhone 15 pro", "iPhone 15 Pro")]


def test_short_keys_match_only_exactly() -> None:
    assert match("Then D P O and DPL and T.R.L.", "DPO", "TRL") == [("D P O", "DPO"), ("T.R.L", "TRL")]
    assert match("Every LLM needs a server.", "vLLM") == []      # a short word heard, not a slip


def test_punctuation_kept_around_the_words() -> None:
    text = "We saved it (as GGUV), then stopped."
    [s] = Matcher([Term("GGUF")]).suggest(text)
    assert text[s.start:s.end] == "GGUV"


def test_possessives_and_compounds_keep_their_ending() -> None:
    assert match("The Axolottle's config is long.", "Axolotl") == [("Axolottle", "Axolotl")]
    assert match("A GGUV-based file.", "GGUF") == [("GGUV", "GGUF")]


def test_another_grammatical_form_of_a_term_is_left_alone() -> None:
    """Plurals and German case endings are the term spelt right, alone or inside a longer
    phrase; a term cut short is still a mis-hearing."""
    assert match("two embeddings and tokenizers", "embedding", "tokenizer") == []
    assert match("viele Wechselwirkungen, den Blutdrucksenkern", "Wechselwirkung",
                 "Blutdrucksenker") == []
    assert match("T-cells in fine-tuned runs", "T-cell", "fine-tune") == []   # hyphenated
    assert match("the Axolot config", "Axolotl") == [("Axolot", "Axolotl")]
    assert match("an embeding", "embedding") == [("embeding", "embedding")]


def test_a_plural_keeps_its_ending_when_the_term_is_singular() -> None:
    """The singular would change what was said; the corrected text is then left alone."""
    terms = [Term("T-cell"), Term("café au lait spot")]
    text = "Her T cells and cafe au lait spots."
    found = Matcher(terms).suggest(text)
    assert [(s.found, s.replacement) for s in found] == \
        [("T cells", "T-cells"), ("cafe au lait spots", "café au lait spots")]
    for s in reversed(found):
        text = text[:s.start] + s.replacement + text[s.end:]
    assert Matcher(terms).suggest(text) == []


def test_a_spoken_unit_is_replaced_with_the_term_not_left_behind() -> None:
    assert match("take Ramipril 5 milligrams daily", "Ramipril 5 mg") == \
        [("Ramipril 5 milligrams", "Ramipril 5 mg")]
    assert match("Ramipril 5 Milligramm täglich", "Ramipril 5 mg") == \
        [("Ramipril 5 Milligramm", "Ramipril 5 mg")]


def test_a_sharp_is_replaced_with_its_letter() -> None:
    assert match("in C sharp and f sharp", "C#", "F#") == [("C sharp", "C#"), ("f sharp", "F#")]


def test_a_name_opening_with_a_dot_is_heard_with_it() -> None:
    assert match("It still runs on dot net.", ".NET") == [("dot net", ".NET")]
    assert match("Can you see the net result?", ".NET") == []


def test_a_section_sign_is_replaced_with_the_word_it_says() -> None:
    """Unspoken, "§ 230" was the bare number: "section 230" became "section § 230"."""
    assert match("It relies on section 230 for that.", "§ 230") == [("section 230", "§ 230")]


def test_no_phrase_across_a_sentence_end() -> None:
    found = match("That is mixed. Role eight by seven b was next.", "Mixtral 8x7B")
    assert found and all("." not in f for f, _ in found)


def test_empty_inputs() -> None:
    assert Matcher([]).suggest("anything") == []
    assert Matcher([Term("GGUF")]).suggest("   ") == []


# --- the command -----------------------------------------------------------------------

VTT = """WEBVTT

NOTE checked up to here

1
00:00:00.000 --> 00:00:03.000
I ran mixed role 8 by 7 B
on my laptop &amp; it worked.

00:00:03.500 --> 00:00:06.000
Then I saved it as GGUV for Lama CPP.

00:00:06.500 --> 00:00:08.000
Nothing to fix here.
"""
TERMS = "Mixtral 8x7B | mixed role\nGGUF\nllama.cpp\n"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "train.vtt").write_text(VTT, encoding="utf-8")
    (tmp_path / "terms.txt").write_text(TERMS, encoding="utf-8")
    return tmp_path


def run(workdir: Path, apply: bool = False, yes: bool = False, answer: str | None = "n"):
    out: list[str] = []
    asked: list[str] = []

    def ask(prompt: str) -> str | None:
        asked.append(prompt)
        return answer

    status = suggest_command([workdir / "train.vtt"], workdir / "terms.txt", apply=apply, yes=yes,
                             echo=out.append, ask=ask)
    return status, out, asked


def test_writes_suggested_vtt_and_review_list(workdir: Path) -> None:
    original = (workdir / "train.vtt").read_bytes()
    status, out, asked = run(workdir)
    assert status == 0 and not asked
    vtt = workdir / "train.vtt"
    assert out[:3] == [f'{vtt}:7: "mixed role 8 by 7 B" -> "Mixtral 8x7B"',
                       f'{vtt}:11: "GGUV" -> "GGUF"',
                       f'{vtt}:11: "Lama CPP" -> "llama.cpp"']
    assert (workdir / "train.vtt").read_bytes() == original
    suggested = suggested_path(vtt).read_text(encoding="utf-8")
    assert suggested == VTT.replace("mixed role 8 by 7 B", "Mixtral 8x7B").replace(
        "GGUV for Lama CPP", "GGUF for llama.cpp")
    assert not list(workdir.glob("*.bak.vtt"))


def test_files_with_nothing_to_suggest_share_one_line_and_get_no_copy(workdir: Path) -> None:
    """Sixty voice memos, most already right: one line names them, no unchanged copies are
    written beside them, and an earlier run's copy (text corrected since) is removed."""
    for name in ("Memo 1.vtt", "Memo 2.vtt", "New Recording 3.vtt", "New Recording 4.vtt"):
        (workdir / name).write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nNothing to fix here.\n",
                                    encoding="utf-8")
    suggested_path(workdir / "Memo 2.vtt").write_text("WEBVTT\n\nstale\n", encoding="utf-8")
    out: list[str] = []
    paths = [workdir / n for n in ("train.vtt", "Memo 1.vtt", "Memo 2.vtt", "New Recording 3.vtt",
                                   "New Recording 4.vtt")]
    assert suggest_command(paths, workdir / "terms.txt", echo=out.append) == 0
    assert out[3].startswith("3 suggestion(s) for") and len(out) == 5
    assert out[4] == (f"no suggestions for 4 files ({workdir / 'Memo 1.vtt'}, {workdir / 'Memo 2.vtt'}, "
                      f"{workdir / 'New Recording 3.vtt'}, …)")
    assert sorted(p.name for p in workdir.glob("*.suggested.vtt")) == ["train.suggested.vtt"]


def test_a_second_run_over_a_glob_skips_what_the_first_wrote(workdir: Path) -> None:
    """``suggest recordings/*.vtt`` again: the first run's outputs (and backups) are in the
    glob now; they are skipped with one line, not the stop they were."""
    (workdir / "Memo 1.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nGGUV again.\n",
                                        encoding="utf-8")
    first: list[str] = []
    suggest_command(sorted(workdir.glob("*.vtt")), workdir / "terms.txt", echo=first.append)
    (workdir / "train.20261125-0941.bak.vtt").write_bytes((workdir / "train.vtt").read_bytes())
    again: list[str] = []
    assert suggest_command(sorted(workdir.glob("*.vtt")), workdir / "terms.txt", echo=again.append) == 0
    assert again[0] == "skipped 3 file(s) vocabtune wrote (*.bak.vtt, *.suggested.vtt)"
    assert again[1:] == first
    with pytest.raises(VocabtuneError, match="suggest's own output"):
        suggest_command([suggested_path(workdir / "train.vtt")], workdir / "terms.txt", echo=lambda _: None)


def test_apply_with_yes_keeps_a_backup_and_applies(workdir: Path) -> None:
    original = (workdir / "train.vtt").read_bytes()
    status, out, asked = run(workdir, apply=True, yes=True)
    assert status == 0 and not asked
    [backup] = workdir.glob("train.*.bak.vtt")
    assert backup.read_bytes() == original
    applied = (workdir / "train.vtt").read_text(encoding="utf-8")
    assert applied == suggested_path(workdir / "train.vtt").read_text(encoding="utf-8")
    assert "Mixtral 8x7B\non my laptop &amp; it worked." in applied
    assert out[-1].startswith("applied 3 suggestion(s)")


def test_apply_asks_and_a_no_changes_nothing(workdir: Path) -> None:
    original = (workdir / "train.vtt").read_bytes()
    status, out, asked = run(workdir, apply=True, answer="")
    assert asked == [f"apply 3 suggestions to {workdir / 'train.vtt'}? [y/N] "]
    assert (workdir / "train.vtt").read_bytes() == original
    assert not list(workdir.glob("*.bak.vtt")) and out[-1].startswith("not applied")


def test_apply_with_y_applies(workdir: Path) -> None:
    run(workdir, apply=True, answer="y")
    assert "GGUF for llama.cpp" in (workdir / "train.vtt").read_text(encoding="utf-8")


def test_apply_without_a_terminal_refuses(workdir: Path, capsys) -> None:
    original = (workdir / "train.vtt").read_bytes()
    with pytest.raises(VocabtuneError, match="no terminal"):
        run(workdir, apply=True, answer=None)
    assert (workdir / "train.vtt").read_bytes() == original
    # and through the real CLI, whose stdin under pytest is not a terminal
    status = prepare_data.main(["suggest", str(workdir / "train.vtt"), "--vocab",
                                str(workdir / "terms.txt"), "--apply"])
    assert status != 0 and "--yes" in capsys.readouterr().err
    assert (workdir / "train.vtt").read_bytes() == original


def test_crlf_and_bom_survive_apply(workdir: Path) -> None:
    data = b"\xef\xbb\xbf" + VTT.replace("\n", "\r\n").encode()
    (workdir / "train.vtt").write_bytes(data)
    run(workdir, apply=True, yes=True)
    applied = (workdir / "train.vtt").read_bytes()
    assert applied.startswith(b"\xef\xbb\xbfWEBVTT\r\n") and b"GGUF for llama.cpp.\r\n" in applied
    assert applied.count(b"\r\n") == data.count(b"\r\n")


def test_cli_prints_the_review_list(workdir: Path, capsys) -> None:
    status = prepare_data.main(["suggest", str(workdir / "train.vtt"), "--vocab", str(workdir / "terms.txt")])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and lines[0].endswith(':7: "mixed role 8 by 7 B" -> "Mixtral 8x7B"')


def test_broken_vtt_is_refused_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "bad.vtt").write_text("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nGGF\n", encoding="utf-8")
    (tmp_path / "terms.txt").write_text("GGUF\n", encoding="utf-8")
    with pytest.raises(VocabtuneError) as err:
        suggest_command([tmp_path / "bad.vtt"], tmp_path / "terms.txt", echo=lambda _: None)
    assert err.value.line == 4 or err.value.line == 3
    assert not suggested_path(tmp_path / "bad.vtt").exists()


def test_own_output_is_not_taken_as_input(workdir: Path) -> None:
    run(workdir)
    with pytest.raises(VocabtuneError, match="own output"):
        suggest_command([suggested_path(workdir / "train.vtt")], workdir / "terms.txt", echo=lambda _: None)


def test_a_phrase_broken_over_two_lines(tmp_path: Path) -> None:
    (tmp_path / "a.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nWe ran tiny\nllama today.\n",
                                    encoding="utf-8")
    (tmp_path / "terms.txt").write_text("TinyLlama\n", encoding="utf-8")
    out: list[str] = []
    suggest_command([tmp_path / "a.vtt"], tmp_path / "terms.txt", echo=out.append)
    assert out[0] == f'{tmp_path / "a.vtt"}:4: "tiny llama" -> "TinyLlama"'
    assert "We ran TinyLlama today." in suggested_path(tmp_path / "a.vtt").read_text(encoding="utf-8")


def test_the_review_list_and_file_keep_a_plural_ending(tmp_path: Path) -> None:
    (tmp_path / "train.vtt").write_text("WEBVTT\n\n00:00:00.000 --> 00:00:02.000\nHer T cells.\n",
                                        encoding="utf-8")
    (tmp_path / "terms.txt").write_text("T-cell\n", encoding="utf-8")
    out: list[str] = []
    suggest_command([tmp_path / "train.vtt"], tmp_path / "terms.txt", echo=out.append)
    assert out[0] == f'{tmp_path / "train.vtt"}:4: "T cells" -> "T-cells"'
    assert "Her T-cells." in suggested_path(tmp_path / "train.vtt").read_text(encoding="utf-8")
