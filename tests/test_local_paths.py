"""Local folder names are cut to their last part in the metadata pushed to the Hub."""

from __future__ import annotations

import json

from vocabtune.local_paths import hide_in_json, hide_in_text, scrubbed


def test_json_paths_keep_their_last_part_only():
    meta = {"dataset": "/tmp/alice/clients/acme/data/voice", "base_model": "openai/whisper-small",
            "replay": ["builtin", "~/speech/general"], "out": "runs/voice", "win": "C:\\Users\\al\\run",
            "epochs": 4, "nested": [{"adapter": "/tmp/x/best"}], "note": "a/b"}
    assert hide_in_json(meta) == {"dataset": "voice", "base_model": "openai/whisper-small",
                                  "replay": ["builtin", "general"], "out": "runs/voice", "win": "run",
                                  "epochs": 4, "nested": [{"adapter": "best"}], "note": "a/b"}


def test_text_paths_are_cut_but_urls_and_relative_paths_stay():
    text = ("fine-tuned: /tmp/fg/xfc_s42/best, base: /tmp/main/.cache/models/whisper-base\n"
            "see https://huggingface.co/openai/whisper-small and runs/voice/best; ratio 3/4")
    assert hide_in_text(text) == ("fine-tuned: best, base: whisper-base\n"
                                  "see https://huggingface.co/openai/whisper-small and runs/voice/best; "
                                  "ratio 3/4")


def test_only_vocabtune_metadata_files_are_rewritten():
    raw = json.dumps({"dataset": "/tmp/a/data/voice"}).encode()
    assert json.loads(scrubbed("report.json", raw)) == {"dataset": "voice"}
    assert scrubbed("config.json", raw) == raw
    assert scrubbed("report.json", b"\xff not json") == b"\xff not json"


def test_terms_that_start_with_a_slash_are_not_paths():
    meta = {"terms": ["/imagine", "/v1/chat/completions"], "dataset": "/tmp/x/data/voice"}
    assert hide_in_json(meta) == {"terms": ["/imagine", "/v1/chat/completions"], "dataset": "voice"}
    assert hide_in_text("| /v1/chat/completions | 2 | from /tmp/x/data/voice |") == \
        "| /v1/chat/completions | 2 | from voice |"
