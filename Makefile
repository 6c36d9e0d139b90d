# The two commands of the README:  `make train`  and  `make test`.
#
# PYTHON picks the interpreter (`make train PYTHON=python3.10`); 3.10 to 3.13 are supported. Each
# interpreter has its own environment, created on first use and reused afterwards: .venv for the
# main one (3.11, the one CI runs the whole suite on), .venv-3.X for the others. It holds exactly
# the versions of constraints/py3.X.txt (regenerate them with scripts/lock-versions).
#
# Set-up uses uv (installed into the environment from PyPI by pip) and falls back to pip when uv
# cannot be had; INSTALLER=pip forces pip. Both read the same pins. uv does not read pip's
# configuration, so the Makefile hands it pip's find-links folders: where one holds a torch wheel
# for this interpreter (the CPU wheel for 3.11 on the project's machines) uv takes it from there
# instead of PyPI's CUDA build.

PYTHON     ?= python3
MAIN_PY    := 3.11
UV_VERSION ?= 0.13.9
INSTALLER  ?= uv
ARGS       ?=

# The interpreter: PYTHON itself when it runs, else the pyenv version that has an executable of
# that name (pyenv's shims only run the versions that `pyenv global` names).
PYTHON_EXE := $(shell p='$(PYTHON)'; \
	if "$$p" -c '' >/dev/null 2>&1; then "$$p" -c 'import sys; print(sys.executable)'; \
	else for d in "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/*/bin; do \
		if [ -x "$$d/$$p" ] && "$$d/$$p" -c '' >/dev/null 2>&1; then echo "$$d/$$p"; break; fi; done; fi)
PY_VERSION := $(if $(PYTHON_EXE),$(shell '$(PYTHON_EXE)' -c 'import sys; print("%d.%d" % sys.version_info[:2])'))
PINS       := constraints/py$(PY_VERSION).txt

ifeq ($(PY_VERSION),$(MAIN_PY))
VENV ?= .venv
else
VENV ?= .venv-$(PY_VERSION)
endif
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Python caches the bytecode of what it imports, as it does by default: these machines set
# PYTHONDONTWRITEBYTECODE=1, and uv (unlike pip) compiles nothing at install time, so every run
# would compile torch and lightning from source again (about 12 s of each start here). Compiling
# everything at install time instead (uv's --compile-bytecode) costs 90 s on 2 cores.
export PYTHONDONTWRITEBYTECODE :=

ifneq ($(filter-out clean help,$(or $(MAKECMDGOALS),train)),)
ifeq ($(PYTHON_EXE),)
$(error PYTHON=$(PYTHON) does not run here (nor as a pyenv version); try PYTHON=python3.11)
endif
ifeq ($(wildcard $(PINS)),)
$(error Python $(PY_VERSION) ($(PYTHON_EXE)) is not supported: no $(PINS); supported: $(patsubst constraints/py%.txt,%,$(wildcard constraints/py3.*.txt)))
endif
endif

.PHONY: train test setup lint typecheck unit bench clean help

train: $(STAMP)  ## train the default config (pass overrides with ARGS="model=cnn")
	$(PY) train.py $(ARGS)

# The three checks run side by side (each one's output kept together), then the suite.
test: $(STAMP)  ## static checks and the docs (side by side), then the whole test suite
	$(MAKE) --no-print-directory --output-sync=target -j3 lint typecheck docs
	$(MAKE) --no-print-directory unit

setup: $(STAMP)  ## only create this interpreter's environment

# Tests run in parallel (pytest-xdist; WORKERS=0 runs them in this process); tests sharing a
# service are grouped onto one worker (tests/marks.py). The whole suite gets one worker more than
# the cores: its tests wait on their processes and on Slurm's scheduler, and a third worker
# fills those waits (2 cores, 2026-12-02: 653 s with 2 workers, 618 s with 3). test-fast is the
# edit loop: the unmarked tests only, all in-process and busy, one worker per core; none of
# them starts a process (tests/marks.py checks that).
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
FAST_WORKERS ?= auto
FAST_MARKS := not slow and not slurm and not postgres and not root

unit: $(STAMP)  ## the whole test suite (ARGS= passes pytest options); lists the slowest 25
	$(PY) -m pytest -n $(WORKERS) --dist loadgroup --durations=25 $(ARGS)

.PHONY: test-fast
test-fast: $(STAMP)  ## the fast tests: everything unmarked, in parallel
	$(PY) -m pytest -n $(FAST_WORKERS) --dist loadgroup -m "$(FAST_MARKS)" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy's own worker processes: 64 s -> 47 s for a cold check on 2 cores.
typecheck: $(STAMP)
	$(VENV)/bin/mypy --num-workers auto

# The documentation site (mkdocs.yml, docs/), built strictly: a broken link or anchor, or an API
# reference that does not resolve, fails it. Into site/ (gitignored); NO_MKDOCS_2_WARNING quiets
# Material's banner about MkDocs 2.
.PHONY: docs
docs: $(STAMP)  ## build the documentation site strictly into site/
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

bench: $(STAMP)  ## every benchmark of benchmarks/, printed side by side
	$(PY) benchmarks/cli_latency.py
	$(PY) benchmarks/step_overhead.py
	$(PY) benchmarks/data_cache.py
	$(PY) benchmarks/runs_listing.py
	$(PY) benchmarks/sweep_efficiency.py
	$(PY) benchmarks/sweeper_overhead.py
	$(PY) benchmarks/vs_hydra_optuna_sweeper.py --one-epoch
	$(PY) benchmarks/meta_algorithms.py

# uv is installed into the environment by pip (or kept when the right version is there already).
# pip's find-links folders (from the environment and pip's config files) are handed to uv.
$(STAMP): pyproject.toml $(PINS)
	test -x $(PY) || '$(PYTHON_EXE)' -m venv $(VENV)
	@$(PY) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; \
		sys.exit(0 if v == "$(PY_VERSION)" else "$(VENV) holds Python " + v + ", not $(PY_VERSION): remove it or pass VENV=")'
	@links=$$( { printf '%s\n' $$PIP_FIND_LINKS; $(PY) -m pip config get global.find-links 2>/dev/null; } \
		| tr ' ' '\n' | sort -u | sed -n 's/^./--find-links=&/p'); \
	if [ "$(INSTALLER)" = uv ] && { $(VENV)/bin/uv --version 2>/dev/null | grep -qF ' $(UV_VERSION)' || \
		$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }; then \
		set -x; $(VENV)/bin/uv pip install --python $(PY) --quiet $$links -c $(PINS) -e '.[dev]'; \
	else \
		echo "set-up with pip (INSTALLER=$(INSTALLER))"; set -x; \
		$(PY) -m pip install --quiet --disable-pip-version-check -c $(PINS) -e '.[dev]'; \
	fi
	touch $(STAMP)

help:
	@echo "make train|test|setup|lint|typecheck|unit|bench [PYTHON=python3.X] [ARGS=...] [INSTALLER=pip]"
	@echo "this PYTHON: $(PYTHON_EXE) ($(PY_VERSION)) -> $(VENV), pins $(PINS)"

clean:
	rm -rf $(VENV) outputs .mypy_cache .ruff_cache .pytest_cache
