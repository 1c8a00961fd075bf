# Two entry points: `make demo` and `make test`. Each creates .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export MPLBACKEND := Agg

.PHONY: demo test lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p demo-run
	cd demo-run && ../$(BIN)/cytoresp demo

# One pytest session on 2 workers for the tests and the notebooks (nbmake), so that the
# notebooks run side by side with the tests instead of after them.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile --nbmake notebooks tests

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/quality.py

clean:
	rm -rf demo-run build dist *.egg-info .pytest_cache
