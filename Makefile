# vitron-nb: two commands from a fresh clone.
#   make demo   sets everything up and runs the main job (vitron demo)
#   make test   sets everything up, checks the notebooks and the package agree, runs every notebook and pytest
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# nothing is ever fetched at run time
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export MPLBACKEND := Agg
export PYTHONWARNINGS := ignore::DeprecationWarning
# parallel test workers on two cores: one thread each (two threads per worker thrash)
nbtest pytest: export OMP_NUM_THREADS := 1

.PHONY: install browser test demo sync nbtest pytest readme evaluator

$(STAMP): settings.ini setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	set -o pipefail; $(PY) -m pip install -q -e ".[dev]" 2>&1 | { grep -v '^WARNING: Location' || true; }
	touch $@

install: $(STAMP) browser

# tests/test_app_browser.py drives Debian's Chromium with Playwright (pip-installed from dev_requirements; never `playwright install`)
browser:
	@if [ ! -x /usr/bin/chromium ] && ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium for tests/test_app_browser.py"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } || echo "WARNING: could not install chromium: tests/test_app_browser.py will skip"; \
	  else echo "WARNING: chromium is missing (install it: apt-get install chromium as root); tests/test_app_browser.py will skip"; fi; \
	fi

# the notebooks are the source: exporting and cleaning them must change nothing that is committed
sync: install
	$(VENV)/bin/nbdev_export
	$(VENV)/bin/nbdev_clean
	@changed=$$(git status --porcelain -- nbs vitron_nb); \
	if [ -n "$$changed" ]; then echo "nbdev_export/nbdev_clean changed these files (edit the notebook, export, commit):"; \
	echo "$$changed"; exit 1; fi

nbtest: install
	$(VENV)/bin/nbdev_test --n_workers 2 --timing

pytest: install
	$(PY) -m pytest -q -n 2 tests

test: sync nbtest pytest

demo: install
	$(VENV)/bin/vitron demo

# README.md is generated from nbs/index.ipynb (tests/test_readme.py checks it has not drifted)
readme: install
	$(VENV)/bin/jupyter nbconvert --to markdown --log-level ERROR --stdout nbs/index.ipynb > README.md

# retrain the evaluator network that judges generated images and videos (resumes from runs/evaluator)
evaluator: install
	$(VENV)/bin/vitron train --only evaluator
