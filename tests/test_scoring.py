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
    assert (scores["LoRA"].occurrences, scores["LoRA"].hits, scores["LoRA"].false_alarms) == (2, 2, 2)
    assert scores["Mixtral 8x7B"].hits == 0 and scores["Phi-2"].hits == 0   # "Phi 2" != "Phi-2"
    assert (scores["QLoRA"].occurrences, scores["QLoRA"].hits) == (1, 0)
    recall, precision, f1 = term_summary(list(scores.values()))
    assert recall == pytest.approx(2 / 5)
    assert precision == pytest.approx(2 / 4)
    assert f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)


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


def test_score_report_fields():
    report = score("base", ["LoRA and Phi-2"], ["LoRA and phi-2"], TERMS)
    assert report.model == "base" and report.term_recall == 1.0 and report.term_precision == 1.0
    assert report.num_chunks == 1 and {s.term for s in report.per_term} == set(TERMS)
