# The two set-up commands of README.md: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint unit bench screenshots venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,scale,track,qlib]'
	# Qlib itself, for the tests that check the studio against it (pyproject.toml's qlib extra says why --no-deps)
	$(BIN)/python -m pip install --quiet --no-deps pyqlib==0.9.7
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/studio

lint: $(STAMP)
	$(BIN)/ruff check studio tests bench
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test: lint unit

bench: $(STAMP)
	$(BIN)/python bench/builder.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/data.py
	$(BIN)/python bench/cells.py
	$(BIN)/python bench/gui.py
	$(BIN)/python bench/hostile_files.py
	$(BIN)/python bench/hostile_runs.py
	$(BIN)/python bench/stop_checks.py
	$(BIN)/python bench/baselines.py

screenshots: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .hypothesis
