"""WER and vocabulary-term metrics on hand-made cases."""

import pytest

from vocabtune.scoring import biased_wers, normalize, score, term_scores, term_summary, wer

TERMS = ["Mixtral 8x7B", "LoRA", "QLoRA", "Phi-2"]


def test_wer_uses_whisper_normaliser():
    assert wer(["Hello, World!"], ["hello world"]) == 0.0
    assert wer(["the colour"], ["the color"]) == 0.0          # spelling map applied
    assert wer(["a b c d"], ["a x c"]) == pytest.approx(2 / 4)


def test_wer_counts_words_over_the_corpus_not_per_chunk():
    assert wer(["a b c d", "e f"], ["a b c d", "x y"]) == pytest.approx(2 / 6)


def test_wer_empty_reference_counts_insertions():
    assert wer(["", "a b"], ["x y", "a b"]) == pytest.approx(2 / 2)
    assert wer([""], [""]) == 0.0


def test_normalize_is_whisper_english():
    assert normalize("Mr. Smith's colour, 10%") == "mister smith is color 10%"  # OpenAI's rules, verbatim


def test_term_recall_exact_spelling_per_chunk():
    refs = ["I use Mixtral 8x7B and LoRA.", "Phi-2 is small, LoRA too", "QLoRA here"]
    hyps = ["I use mixed role 8x7B and lora", "Phi 2 is small, LoRA LoRA", "LoRA here"]
    scores = {s.term: s for s in term_scores(refs, hyps, TERMS)}
    # "lora" is not "LoRA"; the extra LoRA in chunk 2 and the one in "QLoRA here" are false alarms
    assert (scores["LoRA"].occurrences, scores["LoRA"].hits, scores["LoRA"].false_alarms) == (2, 1, 2)
    assert scores["Mixtral 8x7B"].hits == 0 and scores["Phi-2"].hits == 0   # "Phi 2" != "Phi-2"
    assert (scores["QLoRA"].occurrences, scores["QLoRA"].hits) == (1, 0)
    recall, precision, f1 = term_summary(list(scores.values()))
    assert recall == pytest.approx(1 / 5)
    assert precision == pytest.approx(1 / 3)
    assert f1 == pytest.approx(2 * (1 / 5) * (1 / 3) / (1 / 5 + 1 / 3))


@pytest.mark.parametrize("ref, hyp, hits", [
    ("we use LoRA", "we use LoRA", 1),
    ("we use LoRA", "we use Lora", 0),            # capitals are part of the spelling
    ("we use LoRA", "we use LORA", 0),
    ("we use lora", "we use LoRA", 1),            # a reference's capitals do not hide it
    ("bitsandbytes loads it", "Bitsandbytes loads it", 1),   # start of a sentence
    ("bitsandbytes loads it", "BitsAndBytes loads it", 0),
    ("Qwen is out", "qwen is out", 0),            # a capital term may not lose its capital
    ("It works. bitsandbytes loads", "It works. Bitsandbytes loads", 1),
    ("we serve vLLM", "we serve VLLM", 0),        # mid-sentence: no capital allowed
    ("Mixtral 8x7B runs", "Mixtral\n8x7B runs", 1),  # a line break inside
])
def test_term_hits_need_the_vocabulary_capitals(ref, hyp, hits):
    terms = ["LoRA", "bitsandbytes", "Qwen", "vLLM", "Mixtral 8x7B"]
    scored = {s.term: s for s in term_scores([ref], [hyp], terms)}
    assert sum(s.hits for s in scored.values()) == hits
    assert sum(s.occurrences for s in scored.values()) == 1


@pytest.mark.parametrize("ref, hyp, expected", [
    # one spoken "C++" is one occurrence of C++, not also one of "C"
    ("I write C++ daily.", "I write C++ daily.", {"C++": (1, 1, 0)}),
    ("I write C++ daily.", "I write c++ daily.", {"C++": (1, 0, 0)}),
    ("We run Llama 3 and Llama.", "We run Llama 3 and Llama.", {"Llama 3": (1, 1, 0), "Llama": (1, 1, 0)}),
    ("We run Llama 3.", "We run Llama three.", {"Llama 3": (1, 0, 0), "Llama": (0, 0, 1)}),
    ("Node.js is fast.", "Node.js is fast.", {"Node.js": (1, 1, 0)}),
])
def test_a_term_inside_a_longer_term_is_the_longer_term(ref, hyp, expected):
    terms = ["C", "C++", "Llama", "Llama 3", "Node", "Node.js"]
    got = {s.term: (s.occurrences, s.hits, s.false_alarms) for s in term_scores([ref], [hyp], terms)
           if s.occurrences or s.false_alarms}
    assert got == expected


@pytest.mark.parametrize("ref, hyp, expected", [
    ("Let's go home.", "Let's go home.", {}),                  # the verb, not the language Go
    ("An apple a day, rust on a car", "An apple a day, rust on a car", {}),
    ("We use Go and Rust.", "We use go and rust.", {"Go": (1, 0, 0), "Rust": (1, 0, 0)}),
    ("Go is fast.", "Go is fast.", {"Go": (1, 1, 0)}),
    ("we use lora", "we use LoRA", {"LoRA": (1, 1, 0)}),       # not a word: a sloppy reference
])
def test_an_everyday_word_is_not_the_term_it_is_spelt_like(ref, hyp, expected):
    got = {s.term: (s.occurrences, s.hits, s.false_alarms)
           for s in term_scores([ref], [hyp], ["Go", "Apple", "Rust", "LoRA"])
           if s.occurrences or s.false_alarms}
    assert got == expected


def test_term_in_other_chunk_does_not_count():
    scores = term_scores(["LoRA here", "nothing"], ["nothing", "LoRA here"], ["LoRA"])
    assert (scores[0].hits, scores[0].false_alarms) == (0, 1)


def test_no_terms_in_reference_gives_no_recall():
    report = score("m", ["plain words"], ["plain words"], TERMS)
    assert report.term_recall is None and report.wer == 0.0


def test_biased_and_unbiased_wer_split_errors():
    term_wer, other_wer = biased_wers(["we tuned Phi-2 with LoRA today"],
                                      ["we tuned fight two with LoRA to day"], TERMS)
    # reference words in terms: phi-2, lora (2); errors on them: phi-2 -> fight + inserted two
    assert term_wer == pytest.approx(2 / 2)
    # other words: we tuned with today (4); errors: today -> to + inserted day
    assert other_wer == pytest.approx(2 / 4)


def test_which_apostrophe_is_no_word_error():
    # French typed in Word has "’", Whisper writes "'": term WER was 100% at 100% recall
    report = score("fine-tuned", ["L’IRM et l’épreuve d’effort, c’est tout ?"],
                   ["L'IRM et l'épreuve d'effort, c'est tout?"], ["IRM", "épreuve d'effort"],
                   language="fr")
    assert (report.wer, report.term_recall, report.term_wer, report.other_wer) == (0.0, 1.0, 0.0, 0.0)


def test_score_report_fields():
    report = score("base", ["LoRA and Phi-2"], ["LoRA and Phi-2"], TERMS)
    assert report.model == "base" and report.term_recall == 1.0 and report.term_precision == 1.0
    assert report.num_chunks == 1 and {s.term for s in report.per_term} == set(TERMS)
