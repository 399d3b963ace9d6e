# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
LOCK := requirements.lock
UV_VERSION := 0.13.9

.PHONY: demo test install lock clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# exactly the versions CI tested (hashed); the project itself on top, without resolving again
$(VENV)/.installed: $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

# refresh the lock from the ranges in pyproject.toml (every platform, Python 3.11+)
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra test --generate-hashes --universal --python-version 3.11 \
		--quiet -o $(LOCK)

demo: install
	$(BIN)/nudge simulate --weeks 6
	@echo "open outbox/simulation/digest/*.eml, or run 'nudge simulate --weeks 6 --serve' for the dashboard"

# axe-core for the accessibility test, exactly as package-lock.json pins it (skipped without npm)
AXE := node_modules/axe-core/axe.min.js
$(AXE): package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent; \
	else echo "npm not found: the accessibility test will be skipped"; fi

test: install $(AXE)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) outbox .pytest_cache test-artifacts
