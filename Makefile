# OMTX-Hub: every install step lives here, so a fresh clone needs nothing done by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo serve bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[vina,test]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/omtx-hub demo

serve: $(STAMP)
	$(BIN)/omtx-hub serve

bench: $(STAMP)
	$(BIN)/python bench/hub_core.py
	$(BIN)/python bench/vina_overhead.py
	$(BIN)/python bench/vina_redock.py

clean:
	rm -rf $(VENV) .omtx .pytest_cache
