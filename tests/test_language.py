"""Another language than English: scored with Whisper's basic normaliser, transcribed and
evaluated in the language the model was trained in, no English replay under its token."""

from __future__ import annotations

import json

import pytest

import finetune
import prepare_data
from vocabtune.modelio import recorded_language, resolve_language
from vocabtune.replay import for_language
from vocabtune.scoring import normalize, normaliser_name, score, wer


def test_german_errors_count_under_the_basic_normaliser():
    # each pair reads the same to the English normaliser, and differs in German
    pairs = [("Nehmen Sie 2,5 mg.", "Nehmen Sie 25 mg."),
             ("Wir treffen uns um acht Uhr.", "Wir treffen uns acht Uhr."),
             ("Ich zähle.", "Ich zahle.")]
    for ref, hyp in pairs:
        assert wer([ref], [hyp], "en") == 0.0
        assert wer([ref], [hyp], "de") > 0.0
    assert normalize("Übelkeit, Straße! [Musik]", "de").split() == ["übelkeit", "straße"]
    assert wer(["Größenordnung, bitte."], ["größenordnung bitte"], "german") == 0.0
    assert score("m", ["Nehmen Sie 2,5 mg."], ["Nehmen Sie 25 mg."], [], language="de").wer > 0
    assert normaliser_name("en") == "Whisper's English normaliser"
    assert "basic" in normaliser_name("de")


def test_the_language_is_taken_from_the_model_unless_given(tmp_path):
    adapter, merged, english, other = (tmp_path / n for n in ("best", "merged", "en-merged", "plain"))
    for folder in (adapter, merged, english, other):
        folder.mkdir()
    (adapter / "vocabtune_train.json").write_text(json.dumps({"config": {"language": "de"}}))
    (merged / "vocabtune_train.json").write_text(json.dumps({"config": {"language": "de"}}))
    (merged / "vocabtune_merge.json").write_text(json.dumps({"language": "fr"}))  # merge --language
    (english / "vocabtune_merge.json").write_text(json.dumps({"language": None}))
    assert recorded_language(adapter) == "de" and recorded_language(merged) == "fr"
    assert recorded_language(english) is None and recorded_language(other) is None
    assert recorded_language("openai/whisper-small") is None
    assert resolve_language(adapter, None) == "de"
    assert resolve_language(adapter, "it") == "it"
    assert resolve_language(other, None) == resolve_language("openai/whisper-small", None) == "en"


def test_commands_on_a_trained_model_leave_the_language_to_it():
    parse = finetune.build_parser().parse_args
    assert parse(["evaluate", "--model", "m", "--dataset", "d"]).language is None
    assert parse(["transcribe", "a.mp3", "--model", "m"]).language is None
    assert parse(["train", "--dataset", "d"]).language is None       # the dataset's, else en
    assert prepare_data.build_parser().parse_args(["transcribe"]).language is None


def test_builtin_replay_is_english_and_left_out_for_another_language(caplog):
    assert for_language(("builtin",), "en") == ("builtin",)
    assert for_language(("builtin",), "de") == ("none",)
    assert for_language(("builtin", "data/alltag"), "de") == ("data/alltag",)
    assert for_language(("none",), "de") == ("none",)
    assert "English speech" in caplog.text


@pytest.mark.parametrize("language, name", [("en", "English"), ("de", "basic")])
def test_reports_name_the_normaliser_used(language, name):
    from vocabtune.report import format_markdown
    from vocabtune.schema import EvalReport

    reports = {"finetuned": EvalReport(model="m", wer=0.1, term_recall=None, term_precision=None,
                                       term_f1=None, term_wer=None, other_wer=None, per_term=[],
                                       num_chunks=1)}
    assert f"Whisper's {name}" in format_markdown(reports, {}, "data/x", language=language)


def test_training_in_english_on_text_that_is_not_english_warns():
    from vocabtune.language_guess import MIN_WORDS, english_share, not_english_warning

    german = ["Die Apothekerin gibt mir Pantoprazol und erklärt die Wechselwirkungen mit dem "
              "Blutdrucksenker, bevor ich nach Hause fahre."] * 10
    english = ["The pharmacist hands me the tablets and explains how they interact with the "
               "blood pressure drug before I drive home."] * 10
    jargon = ["We merged the LoRA adapter into Mixtral 8x7B and quantised it with bitsandbytes "
              "before serving it with vLLM on one GPU."] * 10
    assert english_share(german)[0] < 0.5 <= english_share(jargon)[0] <= english_share(english)[0]
    assert "pass --language" in not_english_warning(german, "en")
    assert not_english_warning(german, "de") is None
    assert not_english_warning(english, "en") is None and not_english_warning(jargon, "en") is None
    few = [german[0]]
    assert english_share(few)[1] < MIN_WORDS and not_english_warning(few, "en") is None


@pytest.mark.parametrize("header, code", [
    ("WEBVTT\nLanguage: de\n", "de"),
    ("WEBVTT\r\nKind: captions\r\nlanguage: en-US\r\n", "en"),     # YouTube's, CRLF
    ("WEBVTT\n", None),
    ("WEBVTT\nLanguage: Klingon\n", None),                            # not one Whisper knows
    ("WEBVTT\n\nNOTE Language: de\n", None),                           # a note, not the header
])
def test_the_language_a_caption_header_names(header, code):
    from vocabtune.captions import vtt_language

    assert vtt_language(header + "\n00:00.000 --> 00:01.000\nhallo\n") == code


def test_a_written_vtt_names_its_language_and_reads_back_the_same_cues():
    from vocabtune.captions import format_vtt, parse_vtt, vtt_language
    from vocabtune.schema import Cue

    cues = [Cue(0.0, 1.5, "Guten Tag"), Cue(2.0, 3.0, "& mehr")]
    text = format_vtt(cues, "de")
    assert text.startswith("WEBVTT\nLanguage: de\n\n") and vtt_language(text) == "de"
    parsed, problems = parse_vtt(text)
    assert [(c.start, c.end, c.text) for c in parsed] == [(c.start, c.end, c.text) for c in cues]
    assert problems == [] and format_vtt(cues).startswith("WEBVTT\n\n")


def test_build_records_the_language_the_captions_name_and_train_defaults_to_it(tmp_path, caplog):
    from dataclasses import replace

    from vocabtune.build import spoken_language
    from vocabtune.config import TrainConfig
    from vocabtune.recordings import Recording
    from vocabtune.training import with_language

    def rec(name: str, header: str) -> Recording:
        vtt = tmp_path / f"{name}.vtt"
        vtt.write_text(f"WEBVTT\n{header}\n00:00.000 --> 00:01.000\nhallo\n")
        return Recording(audio=tmp_path / f"{name}.mp3", vtt=vtt, split="train")

    german, plain, english = rec("a", "Language: de\n"), rec("b", ""), rec("c", "Language: en\n")
    assert spoken_language([german, plain]) == "de"        # a hand-written VTT says nothing
    assert spoken_language([plain]) is None
    with caplog.at_level("WARNING"):
        assert spoken_language([german, english]) is None
    assert "a.vtt: de, c.vtt: en" in caplog.text and "--language" in caplog.text

    dataset = tmp_path / "data"
    dataset.mkdir()
    cfg = TrainConfig(dataset=dataset)
    assert with_language(cfg).language == "en"                      # no vocabtune.json
    (dataset / "vocabtune.json").write_text(json.dumps({"language": "de"}))
    assert with_language(cfg).language == "de"
    assert with_language(replace(cfg, language="fr")).language == "fr"
