# Two commands on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint sample clean

$(BIN)/threelines: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'  # every extra: the demo and the tests use them all
	@touch $@

demo: $(BIN)/threelines  ## set up, then screen the bundled sample projects
	$(BIN)/threelines screen data/sample/projects.gpkg

test: $(BIN)/threelines  ## set up, then run the linter and the tests
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/pytest -q

sample: $(BIN)/threelines  ## regenerate data/sample from the committed county boundary
	$(BIN)/python scripts/make_sample.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist
