# Two commands for a fresh machine: `make demo` and `make test`. Both create the virtual
# environment .venv on first use (idempotent afterwards: the stamp file is rebuilt only when
# pyproject.toml changes).
#
# torch is installed first, pinned: pip takes a local CPU wheel when one lies in its find-links
# (as on the CI machines), and the PyPI build of the same version elsewhere — which on a Linux
# machine with an NVIDIA GPU is the CUDA build.

PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
CORES ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.dlpipe-installed

.PHONY: install demo test test-slurm lint format clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install --quiet --editable ".[dev]"
	# numba compiles the motif search's kernels once into their caches (about a minute), so
	# that no interpret job of a run pays for it.
	$(BIN)/python -c "from dlpipe.motifs import precompile; precompile()"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/dlpipe run config/config.yaml --cores $(CORES)

test: $(STAMP)
	$(BIN)/python -m pytest

# A real single-node SLURM cluster (installed with apt-get: needs root) runs the demo through
# profiles/slurm; tests/slurm/run_slurm_test.sh stops every daemon it started.
test-slurm: $(STAMP)
	PYTHON=$(BIN)/python bash tests/slurm/run_slurm_test.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	$(BIN)/snakefmt .

clean:
	rm -rf results logs benchmarks/runs .snakemake
