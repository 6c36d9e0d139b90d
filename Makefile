# The two commands of the README:  `make train`  and  `make test`.
# Each creates .venv on first use (a few minutes) and reuses it afterwards.

VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: train test lint typecheck unit bench clean

train: $(STAMP)  ## train the default config (pass overrides with ARGS="model=cnn")
	$(PY) train.py $(ARGS)

test: lint typecheck unit  ## static checks, then the whole test suite

unit: $(STAMP)
	$(PY) -m pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

bench: $(STAMP)  ## every benchmark of benchmarks/, printed side by side
	$(PY) benchmarks/cli_latency.py
	$(PY) benchmarks/step_overhead.py
	$(PY) benchmarks/data_cache.py
	$(PY) benchmarks/runs_listing.py
	$(PY) benchmarks/sweep_efficiency.py
	$(PY) benchmarks/sweeper_overhead.py

# torch first and pinned: a bare range would pull a multi-GB CUDA wheel (see constraints.txt).
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) outputs .mypy_cache .ruff_cache .pytest_cache
