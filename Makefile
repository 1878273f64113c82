# SDSEN course: the two set-up-and-go commands of the README are
#   make notebooks   # create .venv, then execute all six notebooks (regenerates figures/)
#   make test        # create .venv, then unit tests + nbval on the notebooks (quick mode)
# Both are idempotent: the environment is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# CPU build of PyTorch by default, so that a CPU-only machine never downloads CUDA wheels.
# GPU users: make clean-env, then
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cu128 TORCH_SPEC=torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_SPEC  ?= torch==2.13.0
STAMP  := $(VENV)/.sdsen-installed
NOTEBOOKS := $(sort $(wildcard notebooks/0*.ipynb))

export MPLBACKEND := agg
export PYTHONHASHSEED := 0

CAMPAIGN ?= campaign/sdsen
CAMPAIGN_DATA ?= ../shared/data/rain800_train
CAMPAIGN_ARGS ?=

.PHONY: setup notebooks test unit nbval lint clean-env help campaign

help:
	@echo "make notebooks  - set up .venv and execute every notebook in order (writes figures/)"
	@echo "make test       - set up .venv and run unit tests + nbval on all notebooks (quick mode)"
	@echo "make setup      - only create/update the environment in $(VENV)"
	@echo "make unit       - unit tests and doctests only;  make nbval - the notebooks only"
	@echo "make lint       - ruff;  make clean-env - delete $(VENV) (e.g. to switch torch builds)"
	@echo "make campaign   - continue the default model's training run (campaign/README.md)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || \
	  $(PY) -m pip install -q --retries 0 --no-deps "$(TORCH_SPEC)" --index-url $(TORCH_INDEX)
	$(PY) -m pip install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Quick mode (SDSEN_QUICK=1) on a CPU-only machine, full mode with a GPU; override with
# `make notebooks SDSEN_QUICK=0`.
notebooks: setup
	SDSEN_QUICK=$${SDSEN_QUICK:-$$($(PY) -c 'import torch; print(int(not torch.cuda.is_available()))')} \
	$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.timeout=3600 --ExecutePreprocessor.kernel_name=python3 $(NOTEBOOKS)

unit: setup
	$(PY) -m pytest -q --doctest-modules sdsen tests

nbval: setup
	SDSEN_QUICK=1 $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
	  --nbval-sanitize-with notebooks/nbval_sanitize.cfg $(NOTEBOOKS)

test: setup
	$(PY) -m pytest -q --doctest-modules sdsen tests
	SDSEN_QUICK=1 $(PY) -m pytest -q -p no:cacheprovider --nbval-lax \
	  --nbval-sanitize-with notebooks/nbval_sanitize.cfg $(NOTEBOOKS)

lint: setup
	$(PY) -m ruff check sdsen tests benchmarks scripts

clean-env:
	rm -rf $(VENV)

# The default model's training campaign: continues exactly from campaign/sdsen/latest.pt.
campaign: setup
	$(VENV)/bin/sdsen train --resume --run-dir $(CAMPAIGN) --data $(CAMPAIGN_DATA) \
	  --val-list $(CAMPAIGN_DATA)/val.txt --no-progress $(CAMPAIGN_ARGS)
