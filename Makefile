# OMTX-Hub: every install step lives here, so a fresh clone needs nothing done by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VIEWER := src/omtx_hub/web/static/vendor/3Dmol-min.js

.PHONY: install test check demo serve bench browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# PyTorch first, pinned: boltz-community needs torch, and an unpinned one would pull a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[server,vina,poses,repair,s3,boltz,test]'
	touch $(STAMP)

# The 3D viewer (3Dmol.js) comes from the npm registry at install time; the UI never uses a CDN.
$(VIEWER): frontend/package.json frontend/package-lock.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(dir $(VIEWER))
	cp frontend/node_modules/3dmol/build/3Dmol-min.js $(VIEWER)

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; } || \
	  echo "WARNING: could not install chromium; the browser test will say so"; }

install: $(STAMP) $(VIEWER)

test: install browser
	$(BIN)/pytest

# The quality gate CI runs before the tests: formatting, lint, types (settings in pyproject.toml).
check: install
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

demo: install
	$(BIN)/omtx-hub demo

serve: install
	$(BIN)/omtx-hub serve

bench: install
	$(BIN)/python bench/hub_core.py
	$(BIN)/python bench/submit_large.py
	$(BIN)/python bench/control_plane.py
	$(BIN)/python bench/vina_overhead.py
	$(BIN)/python bench/vina_redock.py
	$(BIN)/python bench/pose_checks.py
	$(BIN)/python bench/million.py --exports
	$(BIN)/python bench/idle_workers.py --workers 30
	$(BIN)/python bench/small_batches.py

clean:
	rm -rf $(VENV) .omtx .pytest_cache frontend/node_modules $(VIEWER)
