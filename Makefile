# dkp: every target sets up its own virtualenv (.venv) on first use, and again only when
# setup.cfg/pyproject.toml change. A fresh machine needs python3 and make, nothing else.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LAUNCHERS := $(VENV)/.launchers
DATA   ?= data/synthetic
SEEDS  ?= 1
SYNTHETIC ?=
RUNS   ?= outputs/curves
JOBS   ?= 2

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-cluster device-check lint curves curves-quick readme-figures \
        data bench rehearsal clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(STAMP): setup.cfg pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create/refresh .venv with dkp (editable) and dev tools

test: $(STAMP)  ## run the test suite (fast tests; slow ones: make test-slow)
	$(PY) -m pytest -q

test-slow: $(STAMP)  ## run only the tests marked slow (installs the ffmpeg CLI they compare with)
	command -v ffmpeg || (apt-get update -qq && apt-get install -y -qq ffmpeg)
	$(PY) -m pytest -q -m slow

$(LAUNCHERS): $(STAMP)
	$(PY) -m pip install --quiet -e '.[launchers]'
	@touch $(LAUNCHERS)

test-cluster: $(LAUNCHERS)  ## the SLURM tests, on a one-node cluster started here (as root)
	bash tests/cluster/slurm.sh up
	status=0; timeout 2400 $(PY) -m pytest -q -m cluster tests/cluster || status=$$?; \
	bash tests/cluster/slurm.sh down; exit $$status

device-check:  ## on a GPU machine: CUDA tests, bf16 training, speed (scripts/device_check.sh)
	bash scripts/device_check.sh

lint: $(STAMP)  ## ruff (lint and format)
	$(VENV)/bin/ruff check dkp tests experiments benchmarks scripts
	$(VENV)/bin/ruff format --check dkp tests experiments benchmarks scripts

data: $(STAMP)  ## build the embedded synthetic dataset in $(DATA) if absent (FORCE=1: replace)
	$(PY) -m dkp.cli.synthetic --out $(DATA) $(if $(FORCE),--force)

curves: $(STAMP)  ## build data, train, sweep and draw the curves into outputs/curves/figures
	$(PY) experiments/make_curves.py --data $(DATA) --seeds $(SEEDS) --runs $(RUNS) \
	   --jobs $(JOBS) --synthetic="$(SYNTHETIC)"

curves-quick: $(STAMP)  ## a smaller, faster version of `make curves` (outputs/curves-quick)
	$(PY) experiments/make_curves.py --data $(DATA) --jobs $(JOBS) --quick

readme-figures: $(STAMP)  ## copy the last `make curves` figures into docs/, quote its verdicts
	$(PY) experiments/readme_figures.py --figures outputs/curves/figures --out docs/figures \
	   --quote docs/results.md

bench: $(STAMP)  ## run the benchmark suite (make bench)
	$(PY) -m benchmarks.run

rehearsal: $(STAMP)  ## dkp-data check + prepare + a paper-scale data epoch: 300 real-length 720p videos (30 min)
	$(PY) experiments/rehearsal.py --out outputs/rehearsal

clean:  ## remove outputs, caches and the virtualenv (not the dataset: rm -r data)
	rm -rf $(VENV) outputs multirun .cache .pytest_cache .ruff_cache .bench_cache *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
