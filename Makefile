# Two commands do all the set-up on a fresh machine (Python 3.10+, no GPU needed):
#   make demo   create .venv, install lrlib, run one edit on the embedded default -> outputs/demo
#   make test   create/update .venv with the test extras, run the whole suite (+ notebooks)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
# pip prints one harmless line per local index it skips on some machines: hide those
QUIET  := 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: demo test install notebooks-sync notebooks-check clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip $(QUIET)

# torch and torchvision are resolved by pip together (never pin one alone)
$(VENV)/.base: $(VENV)/bin/python pyproject.toml
	$(PIP) install -e . $(QUIET)
	@$(PY) -c "import lrlib, torch, torchvision.ops" && touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install -e ".[test]" $(QUIET)
	@$(PY) -c "import pytest, nbmake, jupytext, ipywidgets" && touch $@

install: $(VENV)/.base

demo: $(VENV)/.base
	$(PY) -m lrlib demo --out outputs/demo

test: $(VENV)/.test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory notebooks-check && \
	  HF_HUB_OFFLINE=1 $(PY) -m pytest -q --nbmake --nbmake-timeout=600 notebooks; fi

# notebooks/*.py (jupytext percent) are the reviewed source; the .ipynb are generated from them
notebooks-sync: $(VENV)/.test
	$(VENV)/bin/jupytext --sync notebooks/*.py

notebooks-check: $(VENV)/.test
	@$(PY) tools/nbpairs.py notebooks

clean:
	rm -rf $(VENV) outputs .pytest_cache
