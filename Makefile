# fedmarket: `make demo` runs the end-to-end marketplace demo, `make test` runs the tests.
# Both install what they need first (scripts/setup.sh, idempotent).
.PHONY: setup demo test lint contracts bench clean

VENV_BIN := .venv/bin

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV_BIN)/fedmarket demo

test: setup
	@bash scripts/setup_browser.sh
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/python -m pytest -q

lint: setup
	$(VENV_BIN)/ruff check .

contracts: setup
	$(VENV_BIN)/python scripts/build_contracts.py

bench:
	@bash scripts/setup.sh bench
	$(VENV_BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf .venv node_modules .pytest_cache .ruff_cache
