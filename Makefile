# Two commands do everything: `make run` (set up, index, serve) and `make test` (set up, test).
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
HOST ?= 127.0.0.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup index run test bench train-reader fit-answerer clean

setup: $(STAMP)

# torch first, pinned exactly: that pin takes the CPU build; a looser one pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Exit status 3 means some corpus files were skipped (reported above); the index is still built.
index: setup
	$(BIN)/rag index || [ $$? -eq 3 ]

run: index
	$(BIN)/rag serve --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/run_all.py

# The learned parts, retrained from ../shared/eval/squad/train/ (never run by `make test`):
# the reader (about 1 hour on 2 cores) and then the rank and answer models fitted to its outputs.
train-reader: setup
	$(BIN)/python -m rag.train_reader

fit-answerer: setup
	$(BIN)/python bench/fit_answerer.py

clean:
	rm -rf $(VENV) index/builds index/CURRENT index/.lock
