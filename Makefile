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
NBVAL_ARGS := --nbval-lax --nbval-kernel-name seglib --nbval-cell-timeout 900 \
              --sanitize-with tests/nbval_sanitize.cfg

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SEGLIB_PROFILE ?= cpu

.PHONY: setup lab test test-unit test-notebooks zoo clean help

help:
	@echo "make lab             set up .venv and start JupyterLab on notebooks/ (LAB_ARGS=...)"
	@echo "make test            set up .venv, run unit tests and every notebook (nbval, cpu profile)"
	@echo "make test-unit       unit tests only"
	@echo "make test-notebooks  notebooks only"
	@echo "make zoo [NAME=...]  retrain model-zoo entries and rewrite data/zoo/manifest.json"

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install --quiet -e ".[dev]" -c $(CONSTRAINTS) 2>&1 | grep -v "^WARNING: Location" ; \
	  test $${PIPESTATUS[0]} -eq 0
	$(PY) -m ipykernel install --sys-prefix --name seglib --display-name "Python (seglib)" >/dev/null
	@touch $(STAMP)
	@echo "seglib environment ready in $(VENV)"

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

test: setup
	$(PY) -m pytest tests notebooks/*.ipynb $(NBVAL_ARGS) $(PYTEST_ARGS)

test-unit: setup
	$(PY) -m pytest tests $(PYTEST_ARGS)

test-notebooks: setup
	$(PY) -m pytest notebooks/*.ipynb $(NBVAL_ARGS) $(PYTEST_ARGS)

zoo: setup
	$(PY) -m seglib.zoo $(NAME)

clean:
	rm -rf build .pytest_cache
