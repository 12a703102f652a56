# Set-up and the two Quickstart jobs. Uses the active virtualenv if there is one, else ./.venv.
PYTHON ?= python3
VENV ?= .venv
# CPU build of PyTorch; on the project's build machines this wheel is on local disk.
TORCH_SPEC ?= torch==2.13.0
ifdef VIRTUAL_ENV
BIN := $(VIRTUAL_ENV)/bin
else
BIN := $(VENV)/bin
endif
STAMP := $(BIN)/../.mammo-monai-installed
WORKDIR ?= demo
PATIENTS ?= 300

.PHONY: setup demo lint format test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/mammo-monai demo --workdir $(WORKDIR) --patients $(PATIENTS)

# the linter and formatter check (configuration in pyproject.toml); `make format` rewrites the code to pass it
lint: setup
	$(BIN)/ruff check mammo_monai tests scripts
	$(BIN)/ruff format --check mammo_monai tests scripts

format: setup
	$(BIN)/ruff check --fix mammo_monai tests scripts
	$(BIN)/ruff format mammo_monai tests scripts

test: setup lint
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python scripts/bench_io.py

clean:
	rm -rf $(WORKDIR) .pytest_cache
