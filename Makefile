# The README's two commands: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Every driver and plugin is its own distribution, installed editable beside the core.
EXTRAS := $(sort $(dir $(wildcard plugins/*/pyproject.toml drivers/*/pyproject.toml)))
STAMP  := $(VENV)/.installed

.PHONY: setup run test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix pyproject.toml,$(EXTRAS))
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Ruff Hub needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' $(addprefix -e ./,$(EXTRAS))
	@touch $@

run: setup
	$(BIN)/hub run $(ARGS)

test: setup
	$(BIN)/pytest $(ARGS)

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) hub-data .pytest_cache
