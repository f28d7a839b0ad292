# facegate — the two commands of the quick start are `make demo` and `make test`.
# Each does its own set-up: venv, Python packages, Debian packages, Kafka jars.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DURATION ?= 0

.PHONY: setup demo test down lint schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[edge,cloud,dev,models]'
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/facegate stack install
	$(BIN)/facegate edge models fetch

demo: setup
	$(BIN)/facegate demo --duration $(DURATION)

test: setup
	$(BIN)/pytest

down:
	@if [ -x $(BIN)/facegate ]; then $(BIN)/facegate stack down; fi

lint: $(STAMP)
	$(BIN)/ruff check edge_agent stream_processor tests
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/facegate edge export-schema

clean: down
	rm -rf .facegate
