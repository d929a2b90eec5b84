"""Vocabulary files and exact-spelling term matching."""

from pathlib import Path

import pytest

from vocabtune.errors import VocabtuneError
from vocabtune.vocab import (count_terms, find_exact, find_term, parse_vocab_text, read_vocab,
                             starts_sentence)


@pytest.mark.parametrize("term,text,expected", [
    ("LoRA", "QLoRA and LoRA.", 1),          # inside a longer word does not count
    ("LoRA", "lora, LORA; LoRA-based", 3),   # find_term: any capitals, punctuation around ignored
    ("Phi-2", "Phi 2 is small", 0),          # "Phi 2" is not "Phi-2"
    ("Phi-2", "phi-2, nice", 1),
    ("Phi-2", "Phi-2B", 0),                  # digits/letters glued on: a different word
    ("Qwen", "Qwen2 and Qwen", 1),
    ("Mixtral 8x7B", "Mixtral 8x7B", 1),
    ("Mixtral 8x7B", "Mixtral 8 x 7B", 0),
    ("Mixtral 8x7B", "mixtral\n8x7b", 1),    # a wrapped caption line still matches
    ("KV cache", "the KV-cache", 0),
    ("llama.cpp", "(llama.cpp)", 1),
    ("llama.cpp", "llamaxcpp", 0),           # the dot is literal, not a regex wildcard
    ("SOLAR 10.7B", "SOLAR 10.7B, then SOLAR 10.7", 1),
    ("Yi-34B", "Yi-34B.", 1),
    ("C++", "I like C++ and C", 1),
    ("GPT-4", "GPT-4.5 and GPT-4o, then GPT-4, GPT-4.", 2),   # a version number goes on
    ("Llama 3", "Llama 3.1 beat Llama 3,2 ways", 0),
    ("7B", "SOLAR 10.7B and Mistral 7B", 1),
    ("Llama", "I ran llama.cpp on Llama. Then Llama.", 2),   # a dotted name is another word
    ("Node", "Node.js, not Node", 1),
    ("cpp", "llama.cpp", 0),
])
def test_find_term(term, text, expected):
    assert len(find_term(term, text)) == expected


@pytest.mark.parametrize("term, text", [
    ("épreuve d'effort", "une épreuve d’effort"),     # typed in Word or on a Mac: ’
    ("épreuve d’effort", "une épreuve d'effort"),     # Whisper writes '
    ("IRM", "l’IRM et d'IRM"),                        # an elided article is no glued letter
])
def test_an_apostrophe_is_any_apostrophe(term, text):
    assert find_exact(term, text) == find_term(term, text) != []


def test_count_terms_counts_a_term_inside_a_longer_one_once():
    # build's coverage table: "Llama 3" read three times is not also three "Llama"s
    text = "Llama 3 beats Llama. C++ and C# are not C. Llama 3 again, Llama 3."
    assert count_terms(["Llama", "Llama 3", "C", "C++", "C#"], text) == \
        {"Llama 3": 3, "Llama": 1, "C++": 1, "C#": 1, "C": 1}


def test_count_terms_leaves_out_the_everyday_word():
    # build's coverage table: "let's go" read in the recording is not a reading of "Go"
    assert count_terms(["Go", "Swift"], "Let's go. Go is fast, Swift too; a swift reply.") == \
        {"Go": 1, "Swift": 1}


def test_count_terms_leaves_out_absent_terms():
    counts = count_terms(["LoRA", "QLoRA", "DPO"], "QLoRA LoRA lora")
    assert counts == {"LoRA": 2, "QLoRA": 1}


def test_parse_vocab_with_aliases_comments_and_blanks():
    terms = parse_vocab_text("# my terms\n\nMixtral 8x7B | mixtral eight by seven b | mixed role\n  vLLM  \n")
    assert [t.text for t in terms] == ["Mixtral 8x7B", "vLLM"]
    assert terms[0].aliases == ("mixtral eight by seven b", "mixed role")
    assert terms[0].line == 3 and terms[1].line == 4


@pytest.mark.parametrize("text,line,what", [
    ("ok\n| alias only\n", 2, "aliases without a term"),
    ("Term | | x\n", 1, "empty alias"),
])
def test_parse_vocab_errors_name_the_line(text, line, what):
    with pytest.raises(VocabtuneError) as err:
        parse_vocab_text(text, "vocab/terms.txt")
    assert err.value.line == line and what in str(err.value)
    assert str(err.value).startswith(f"vocab/terms.txt:{line}: ")


@pytest.mark.parametrize("text, line, what, fix", [
    ("term,alias\nLoRA,lower\n", 1, 'a "," between words', 'aliases after "|"'),      # a CSV export
    ("LoRA;lower\n", 1, 'a ";"', 'aliases after "|"'),
    ("LoRA\nPhi-2\tphi two\n", 2, "a tab", 'aliases after "|"'),                      # spreadsheet columns
    ('LoRA\n"Mixtral 8x7B","mixtral"\n', 2, "quotes around the term", "remove the quotes"),
    ("LoRA\n\u201cPhi-2\u201d\n", 2, "quotes around the term", "remove the quotes"),
    ("Phi-2,\n", 1, 'a "," at the end', 'remove the ","'),
    ("LoRA\n- Phi-2\n", 2, "a list bullet", "remove the bullets"),
    ("* LoRA\n", 1, "a list bullet", "remove the bullets"),
    ("\u2022 LoRA\n", 1, "a list bullet", "remove the bullets"),
    ("# LLM terms\n1. LoRA\n2) Phi-2\n", 2, "every line is numbered", "remove the numbers"),
    ("LoRA\n<!-- later -->\n", 2, "an HTML comment", 'start with "#"'),
    ("C#\nLoRA  # low-rank adapters\n", 2, 'a "#" comment after', "a line of its own"),
    ("Phi-2 | phi two # a small model\n", 1, 'a "#" comment after', "a line of its own"),
    ("LoRA\nAdd new terms at the end, one per line.\n", 2, "a sentence, not a term", 'start note lines with "#"'),
    ("Hier stehen die Begriffe, bitte unten ergänzen!\n", 1, "a sentence, not a term", "outside the vocabulary"),
])
def test_a_list_pasted_in_another_layout_is_refused(text, line, what, fix):
    with pytest.raises(VocabtuneError) as err:
        parse_vocab_text(text, "vocab/terms.txt")
    assert err.value.line == line and what in err.value.message and fix in err.value.hint


def test_commas_tabs_and_numbers_that_belong_to_terms_are_kept():
    text = ("2,4-D\nN,N-DMF\nDr. Reddy's Laboratories, Ltd.\n1. FC Köln\n3.5 mg\nC++ - the language\n"
            "vLLM\t | v l l m\t\nTaiwan Semiconductor Manufacturing Company Co., Ltd.\n"
            "Yahoo!\nWho Wants to Be a Millionaire?\n")
    assert [t.text for t in parse_vocab_text(text)] == [
        "2,4-D", "N,N-DMF", "Dr. Reddy's Laboratories, Ltd.", "1. FC Köln", "3.5 mg", "C++ - the language",
        "vLLM", "Taiwan Semiconductor Manufacturing Company Co., Ltd.", "Yahoo!",
        "Who Wants to Be a Millionaire?"]


def test_read_vocab_duplicates_across_files(tmp_path: Path):
    (tmp_path / "a.txt").write_text("LoRA\nvLLM\n")
    (tmp_path / "b.txt").write_text("GGUF\nlora\n")
    with pytest.raises(VocabtuneError, match="duplicate term") as err:
        read_vocab(tmp_path)
    assert err.value.line == 2 and err.value.file.endswith("b.txt")


@pytest.mark.parametrize("names", [["terms.csv"], ["terms.csv", "terms.md"], ["terms"]])
def test_a_folder_with_terms_in_other_files_only_says_what_is_not_read(tmp_path: Path, names):
    for name in names:
        (tmp_path / name).write_text("term,alias\nLoRA,lower\n")
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "README.md").write_text("Put your terms here.\n")          # not a list of terms
    with pytest.raises(VocabtuneError) as err:
        read_vocab(tmp_path)
    assert f"({', '.join(sorted(names))} not read)" in err.value.message
    assert "terms.txt" in err.value.hint


def test_an_empty_folder_is_an_empty_vocabulary(tmp_path: Path):
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    (tmp_path / "README.md").write_text("Put your terms here as *.txt files.\n")
    assert read_vocab(tmp_path) == []


def test_one_alias_for_two_terms_is_an_error_naming_both(tmp_path: Path):
    (tmp_path / "a.txt").write_text("LoRA | lower | lora\nPhi-2 | Phi-2\n")   # own spelling: fine
    (tmp_path / "b.txt").write_text("GGUF\nLowerBound | Lower\n")
    with pytest.raises(VocabtuneError) as err:
        read_vocab(tmp_path)
    assert err.value.file.endswith("b.txt") and err.value.line == 2
    assert '"LoRA" (line 1 of' in err.value.message and "a.txt" in err.value.message


def test_read_vocab_missing_folder(tmp_path: Path):
    with pytest.raises(VocabtuneError, match="vocabulary not found"):
        read_vocab(tmp_path / "nope")


def test_read_vocab_shared_terms(llm_lingo: Path):
    terms = read_vocab(llm_lingo / "terms.txt")
    assert len(terms) == 40 and terms[0].text == "Hugging Face"


@pytest.mark.parametrize("text, start, expected", [
    ("LoRA here", 0, True), ("It ran. LoRA here", 8, True), ('He said "LoRA', 9, False),
    ('Done! "LoRA', 7, True), ("we use LoRA", 7, False), ("why? (LoRA", 6, True),
    ("Hola. ¿LoRA", 7, True), ("¡LoRA", 1, True), ("« LoRA", 2, True), ("„LoRA", 1, True),
    ("dijo ¿LoRA", 6, False),
])
def test_starts_sentence(text, start, expected):
    assert starts_sentence(text, start) is expected


@pytest.mark.parametrize("data, what", [
    ("Größe\n".encode("latin-1"), "not UTF-8 text (byte 0xf6 at offset 2)"),
    ("LoRA\nGröße\n".encode("utf-16"), "saved as UTF-16"),
])
def test_a_vocab_file_not_in_utf8_is_one_line_error(tmp_path: Path, data: bytes, what: str):
    (tmp_path / "terms.txt").write_bytes(data)
    with pytest.raises(VocabtuneError) as err:
        read_vocab(tmp_path)
    assert what in str(err.value) and "save the file as UTF-8" in str(err.value)
    assert err.value.file.endswith("terms.txt") and err.value.line


@pytest.mark.parametrize("data, kind", [
    (b"{\\rtf1\\ansi\\ansicpg1252\n\\f0\\fs24 \\cf0 LoRA\\\nQLoRA}", "rich text (RTF)"),
    (b"PK\x03\x04\x14\x00\x06\x00", "a word-processor document"),
])
def test_a_vocab_file_saved_by_a_word_processor_is_one_line_error(tmp_path: Path, data, kind):
    # TextEdit's RTF is ASCII: its lines were read as terms ("LoRA\\", "QLoRA}")
    (tmp_path / "terms.txt").write_bytes(data)
    with pytest.raises(VocabtuneError) as err:
        read_vocab(tmp_path)
    assert f"saved as {kind}" in str(err.value) and err.value.line == 1
    assert "Make Plain Text" in err.value.hint


def test_read_vocab_skips_hidden_files_and_folders(tmp_path: Path):
    (tmp_path / "terms.txt").write_text("LoRA\n")
    (tmp_path / "._terms.txt").write_bytes(b"\x00\x05\x16\x07\xff\xfe")   # macOS resource fork
    (tmp_path / ".terms.txt").write_text("LoRA\n")                        # an editor's copy
    (tmp_path / "old.txt").mkdir()
    (tmp_path / "MORE.TXT").write_text("vLLM\n")                          # any case of .txt
    assert [t.text for t in read_vocab(tmp_path)] == ["vLLM", "LoRA"]


def test_read_vocab_unreadable_file_is_one_line_error(tmp_path: Path):
    (tmp_path / "terms.txt").write_text("LoRA\n")
    (tmp_path / "broken.txt").symlink_to(tmp_path / "gone.txt")
    with pytest.raises(VocabtuneError, match="cannot read the vocabulary file") as err:
        read_vocab(tmp_path)
    assert err.value.file.endswith("broken.txt")


def test_decomposed_accents_in_the_vocab_match_composed_text(tmp_path: Path):
    (tmp_path / "terms.txt").write_text("A\u030angstro\u0308m\nnai\u0308ve\nnaïve\n")   # NFD, then NFC
    with pytest.raises(VocabtuneError, match='duplicate term "naïve"'):
        read_vocab(tmp_path)
    (tmp_path / "terms.txt").write_text("A\u030angstro\u0308m\n")
    (term,) = read_vocab(tmp_path)
    assert term.text == "Ångström" and count_terms([term.text], "One Ångström is small.") == {"Ångström": 1}


def test_an_alias_that_is_another_term_is_an_error(tmp_path: Path):
    (tmp_path / "terms.txt").write_text("LoRA | QLoRA | low rank\nvLLM\nqlora\n")
    with pytest.raises(VocabtuneError, match='alias "QLoRA" of "LoRA" is also a term') as err:
        read_vocab(tmp_path)
    assert err.value.line == 1 and "line 3" in str(err.value)
    (tmp_path / "terms.txt").write_text("PEFT | PEFT | peft\nLoRA | low rank\n")     # its own spelling: harmless
    assert [t.text for t in read_vocab(tmp_path)] == ["PEFT", "LoRA"]
