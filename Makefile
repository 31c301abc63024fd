# Two commands do all the set-up on a fresh machine (Python 3.10+, no GPU needed):
#   make demo   create .venv, install lrlib, run one edit on the embedded default -> outputs/demo
#   make test   create/update .venv with the test extras, run the whole suite (+ notebooks)
#   make test-browser   notebook 10's widget panel in a headless browser: JupyterLab, Notebook 7,
#               Voila, ipywidgets 7 and 8
#   make test-min   a second venv with every library at its declared minimum (pyproject), fast subset
#   make smoke  every default architecture at full size, random weights, one edit each (CPU)
#   make notebooks-real   every notebook's real-checkpoint branch, with random-weight models (CPU)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
# pip prints one harmless line per local index it skips on some machines: hide those
QUIET  := 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: demo test test-browser test-min smoke mutation install notebooks-sync notebooks-check notebooks-real clean

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

$(VENV)/.browser: $(VENV)/.test
	$(PIP) install -e ".[test,browser]" $(QUIET)
	@$(PY) -c "import playwright, jupyterlab, notebook, voila" && touch $@

# ipywidgets 7 (what Colab ships) beside the venv's 8, for the browser tests' kernels that import
# it first (PYTHONPATH) and JupyterLab's widget manager for it (jupyterlab_widgets 1)
IPYW7  := $(VENV)/ipywidgets7
$(IPYW7)/.done: $(VENV)/bin/python
	rm -rf $(IPYW7)
	$(PIP) install --no-deps --target $(IPYW7) "ipywidgets>=7.7,<8" "jupyterlab_widgets>=1.1,<2" \
	  ipython_genutils $(QUIET)
	@test -d $(IPYW7)/ipywidgets && touch $@

install: $(VENV)/.base

demo: $(VENV)/.base
	$(PY) -m lrlib demo --out outputs/demo

test: $(VENV)/.test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q tests
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory notebooks-check && \
	  HF_HUB_OFFLINE=1 $(PY) -m pytest -q --nbmake --nbmake-timeout=600 --durations=0 notebooks; fi

# The widget panel of notebook 10 driven in a real browser: JupyterLab, Notebook 7 and Voila on
# 127.0.0.1, and JupyterLab with ipywidgets 7; Debian's chromium through Playwright (apt-get
# install chromium; Playwright's own browser download is never used). Screenshots under
# outputs/browser/.
BROWSER_ENV := LRLIB_BROWSER_TEST=1 LRLIB_IPYWIDGETS7=$(abspath $(IPYW7)) HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
test-browser: $(VENV)/.browser $(IPYW7)/.done
	$(BROWSER_ENV) $(PY) -m pytest -q -s --durations=0 tests/browser

# Every floor in pyproject.toml is a version CI has run: install exactly the floors (torch 2.4 and
# torchvision 0.19 included: ~2.9 GB of CUDA wheels), check they are what got installed, run a fast subset:
# the toy world loaded + one edit (demo), SD / SDXL equal to diffusers' pipelines, one notebook.
MIN    := .venv-min
MINPIP := $(MIN)/bin/python -m pip -q --disable-pip-version-check
$(MIN)/.min: pyproject.toml tools/floors.py
	rm -rf $(MIN)
	$(PYTHON) -m venv $(MIN)
	$(MINPIP) install --upgrade pip $(QUIET)
	$(MINPIP) install $$($(PYTHON) tools/floors.py) $(QUIET)
	$(MINPIP) install -e ".[test]" $$($(PYTHON) tools/floors.py) $(QUIET)
	$(MIN)/bin/python tools/floors.py --check && touch $@

test-min: $(MIN)/.min
	$(MIN)/bin/python tools/floors.py --check
	HF_HUB_OFFLINE=1 $(MIN)/bin/python -m lrlib demo --out $$(mktemp -d)/demo
	HF_HUB_OFFLINE=1 $(MIN)/bin/python -m pytest -q tests/test_real_editors.py
	HF_HUB_OFFLINE=1 $(MIN)/bin/python -m pytest -q --nbmake --nbmake-timeout=600 notebooks/00_overview.ipynb

smoke: $(VENV)/.base
	HF_HUB_OFFLINE=1 $(PY) -m lrlib.bench smoke --size full --sdxl-resolution 512

# Mutation testing (mutmut) of the paper's stage functions: each mutant is a small change to the
# code (an operator, a constant, a dropped argument); a test must fail on it. Config: pyproject.toml.
MUTANTS := "lrlib.scoring.*" "lrlib.regions.x_make_proposals*" "lrlib.regions.x_boxes_to_masks*" \
           "lrlib.regions.x_box_geometry*" "lrlib.anchors.x_top_k_anchors*" \
           "lrlib.anchors.x_cells_to_pixels*" "lrlib.anchors.x_content_cells*"
mutation: $(VENV)/.test
	$(PIP) install -e ".[test,mutation]" $(QUIET)
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(VENV)/bin/mutmut run --max-children 2 $(MUTANTS)
	$(VENV)/bin/mutmut results

# notebooks/*.py (jupytext percent) are the reviewed source; the .ipynb are generated from them
notebooks-sync: $(VENV)/.test
	$(VENV)/bin/jupytext --sync notebooks/*.py notebooks/solutions/*.py

notebooks-check: $(VENV)/.test
	@$(PY) tools/nbpairs.py notebooks

# Every notebook's real branch (the code a GPU user runs) executed here: LRLIB_WORLD=real-random
# gives it small random-weight models of the real classes at CPU sizes (lrlib.course.world_and_config).
# Left out: 08, whose real branch is the toy world (`make test` runs it), and the solution notebooks
# that choose no world (they run the same code in both modes).
REAL_NOTEBOOKS := $(filter-out notebooks/08_ablations.ipynb,$(wildcard notebooks/[0-9]*.ipynb)) \
                  $(wildcard notebooks/solutions/0[024]_*.ipynb)
notebooks-real: $(VENV)/.test
	LRLIB_WORLD=real-random HF_HUB_OFFLINE=1 $(PY) -m pytest -q --nbmake --nbmake-timeout=600 \
	  --durations=0 $(REAL_NOTEBOOKS)

clean:
	rm -rf $(VENV) $(MIN) outputs .pytest_cache
