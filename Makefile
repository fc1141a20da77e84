# The two commands of the README: `make run` and `make test`. Everything else here serves them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test install system-deps services lint typecheck unit bench wheels clean

$(BIN)/activate:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed: install python3.11 and run `make PYTHON=python3.11 ...`")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[server,test]'
	@touch $@

install: $(VENV)/.installed

## make run: the whole stack on this machine, with demo accounts and a contract
run: install
	$(BIN)/workproof up --demo

## make test: system packages, services, then ruff, mypy and pytest
test: install system-deps services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

system-deps:
	@scripts/system-deps.sh

services:
	@scripts/services.sh

lint:
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/domain tests/workflows tests/web -q

bench: install system-deps
	$(BIN)/python -m bench.capture
	$(BIN)/python -m bench.agent_idle
	$(BIN)/python -m bench.settlement
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.workview
	$(BIN)/python -m bench.scale
	$(BIN)/python -m bench.browser_tracker
	$(BIN)/python -m bench.notify

## make wheels: the released wheels in dist/: `workproof` (the agent alone) and `workproof-server`
wheels: install
	$(BIN)/python -m scripts.build_wheels --out dist

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts dist
