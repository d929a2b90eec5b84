# Two commands on a fresh machine: `make demo` (the whole flow on ../shared data with real
# whisper-base weights) and `make test` (the test suite). Each creates the venv it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
SHARED ?= ../shared
BASE   := .cache/models/whisper-base

.PHONY: test demo venv bench clean

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

test: venv
	$(PY) -m pytest

$(BASE)/offline_whisper.json: | venv
	$(PY) $(SHARED)/tools/offline_whisper.py --model base --out $(BASE)

demo: venv $(BASE)/offline_whisper.json
	bash bench/demo.sh $(BASE) $(SHARED)/data/llm-lingo demo

clean:
	rm -rf $(VENV) .pytest_cache demo
