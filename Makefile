# The README's two commands: `make run` and `make test`. Everything else is a helper for them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Every driver and plugin is its own distribution, installed editable beside the core.
EXTRAS := $(sort $(dir $(wildcard plugins/*/pyproject.toml drivers/*/pyproject.toml)))
STAMP  := $(VENV)/.installed
# Exact versions of every installed package, so every node runs the same bytes (the chain's
# consensus depends on cbor2's encoder). A package not listed (a new dependency) installs unpinned
# until `make constraints` records it.
CONSTRAINTS := constraints.txt

.PHONY: setup run test bench clean constraints

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS) $(addsuffix pyproject.toml,$(EXTRAS))
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Ruff Hub needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test]' $(addprefix -e ./,$(EXTRAS))
	@touch $@

# After adding or changing a dependency in a pyproject.toml: install it, then record what the venv
# holds. To upgrade a pinned package, delete its line here first (or edit it), then run this.
constraints: setup
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[test]' $(addprefix -e ./,$(EXTRAS))
	@{ echo "# Exact versions for \`make setup\` (pip install -c). Made by \`make constraints\`; see the Makefile."; \
	   $(BIN)/pip freeze --exclude-editable | grep -v '^#'; } > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)
	@touch $(STAMP)

run: setup
	$(BIN)/hub run $(ARGS)

# The tests wait (chain slots, market periods, processes starting) far more than they compute, so
# more workers than cores pays: see docs/benchmarks.md, "Test suite wall time". WORKERS=0 runs
# them in one process; `make test ARGS=tests/test_x.py` runs one file.
WORKERS ?= 4
test: setup
	$(BIN)/pytest -n $(WORKERS) --dist loadgroup $(ARGS)

bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) hub-data .pytest_cache
