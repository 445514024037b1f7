SHELL := /bin/bash
# Course unit on image segmentation: set-up, lab, tests, model zoo.
# `make lab` and `make test` create .venv on first use (idempotent).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.seglib-installed
CONSTRAINTS := requirements/lab-constraints.txt
LAB_ARGS ?=
NAME ?=
PYTEST_ARGS ?=
PY_VERSION ?= 3.12
OFFLINE ?=
NBVAL_ARGS := --nbval-lax --nbval-kernel-name seglib --nbval-cell-timeout 900 \
              --nbval-sanitize-with tests/nbval_sanitize.cfg

export PIP_DISABLE_PIP_VERSION_CHECK := 1

# OFFLINE=1: install from wheelhouse/ only, on top of the machine's own PyTorch.
ifeq ($(OFFLINE),1)
VENV_FLAGS := --system-site-packages
PIP_SOURCE := --no-index --find-links wheelhouse
endif

.PHONY: setup lab test test-unit test-notebooks test-gpu bench wheelhouse zoo outputs exercises grade slides site test-browser clean help

help:
	@echo "make lab             set up .venv and start JupyterLab on notebooks/ (LAB_ARGS=...)"
	@echo "make test            set up .venv, run unit tests and every notebook (nbval, cpu profile)"
	@echo "make test-unit       unit tests only"
	@echo "make test-notebooks  notebooks only"
	@echo "make test-gpu        the tests and notebooks in the gpu profile (needs CUDA; OFFLINE=1 uses wheelhouse/)"
	@echo "make bench           run every notebook, write bench/results/<profile>-<machine>.json"
	@echo "make wheelhouse      download wheels for an offline GPU machine (PY_VERSION=3.12)"
	@echo "make zoo [NAME=...]  retrain model-zoo entries and rewrite data/zoo/manifest.json"
	@echo "make outputs [NB=...] run notebooks in place (cpu profile, all cores) to store their outputs, then make exercises"
	@echo "make exercises       write the student versions exercises/NN_name.ipynb from notebooks/"
	@echo "make grade SUBMISSIONS=dir  grade dir/<student>/NN_name.ipynb with nbgrader -> build/grading/grades.csv"
	@echo "make slides          offline reveal.js slides in build/slides/ (EXECUTE=1 runs the notebooks first)"
	@echo "make site            the course as static HTML pages in build/site/ (offline; open index.html)"
	@echo "make test-browser    RISE and reveal.js slides in headless Chromium (needs node, npm, chromium)"

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -m pip install --quiet -e ".[dev]" -c $(CONSTRAINTS) $(PIP_SOURCE) 2>&1 | grep -v "^WARNING: Location" ; \
	  test $${PIPESTATUS[0]} -eq 0
	$(PY) -m ipykernel install --sys-prefix --name seglib --display-name "Python (seglib)" >/dev/null
	@touch $(STAMP)
	@echo "seglib environment ready in $(VENV)"

lab: setup
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/notebooks $(LAB_ARGS)

test: setup
	SEGLIB_PROFILE=cpu $(PY) -m pytest tests notebooks/*.ipynb $(NBVAL_ARGS) $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-notebooks: setup
	SEGLIB_PROFILE=cpu $(PY) -m pytest notebooks/*.ipynb $(NBVAL_ARGS) $(PYTEST_ARGS)

test-gpu: setup
	@$(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else \
	  'make test-gpu needs a CUDA GPU, but torch.cuda.is_available() is False on this machine')"
	SEGLIB_PROFILE=gpu $(PY) -m pytest tests notebooks/*.ipynb $(NBVAL_ARGS) $(PYTEST_ARGS)

bench: setup
	$(PY) -m seglib.tools.bench

wheelhouse: setup
	$(PY) scripts/wheelhouse.py --python-version $(PY_VERSION)

zoo: setup
	$(PY) -m seglib.tools.zoo $(NAME)

# Student versions, and slides/browser test with front-end files from npm (package.json).
NODE_STAMP := node_modules/.package-lock.json
CHROMIUM ?= /usr/bin/chromium

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

# The stored outputs: every notebook run in place in the cpu profile, with as many threads as the
# machine has cores (torch's default), then the student versions from the new outputs. No cell takes
# three minutes there; a run that stalls on a widget cell (an nbclient race, jupyter/nbclient#312)
# hits the 600 s cell timeout and is run once more.
NB ?= notebooks/0*.ipynb
RUN_NOTEBOOK = SEGLIB_PROFILE=cpu $(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
  --ExecutePreprocessor.kernel_name=seglib --ExecutePreprocessor.timeout=600
outputs: setup
	for nb in $(NB); do \
	  $(RUN_NOTEBOOK) "$$nb" || { echo "running $$nb again"; $(RUN_NOTEBOOK) "$$nb"; } || exit 1; \
	done
	$(PY) -m seglib.tools.exercises

exercises: setup
	$(PY) -m seglib.tools.exercises

SUBMISSIONS ?=
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=dir (dir/<student>/NN_name.ipynb)"; exit 2; }
	$(PY) -m seglib.tools.grade grade $(SUBMISSIONS)

slides: setup $(NODE_STAMP)
	$(PY) -m seglib.tools.slides $(if $(EXECUTE),--execute)

site: setup $(NODE_STAMP)
	$(PY) -m seglib.tools.site

test-browser: slides site
	LAB_PYTHON=$(PY) CHROMIUM=$(CHROMIUM) node --test --test-concurrency=1 tests/browser/

clean:
	rm -rf build .pytest_cache
