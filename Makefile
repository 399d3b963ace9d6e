# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DB ?= demo.db
PYTEST_ARGS ?=

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	rm -f $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm
	NUDGE_DATABASE_URL=sqlite:///$(DEMO_DB) $(BIN)/nudge db upgrade
	NUDGE_DATABASE_URL=sqlite:///$(DEMO_DB) $(BIN)/nudge content import content/social_media.yaml
	NUDGE_DATABASE_URL=sqlite:///$(DEMO_DB) $(BIN)/nudge policy import content/policies/social-media-v1.txt --policy social-media --version 1
	NUDGE_DATABASE_URL=sqlite:///$(DEMO_DB) $(BIN)/nudge roster import content/sample_roster.csv
	NUDGE_DATABASE_URL=sqlite:///$(DEMO_DB) $(BIN)/nudge status

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DB) outbox .pytest_cache
