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

DEMO_ENV := NUDGE_DATABASE_URL=sqlite:///$(DEMO_DB) NUDGE_OUTBOX_DIR=outbox

demo: install
	rm -rf $(DEMO_DB) $(DEMO_DB)-wal $(DEMO_DB)-shm outbox
	$(DEMO_ENV) $(BIN)/nudge db upgrade
	$(DEMO_ENV) $(BIN)/nudge content import content/social_media.yaml
	$(DEMO_ENV) $(BIN)/nudge policy import content/policies/social-media-v1.txt --policy social-media --version 1
	$(DEMO_ENV) $(BIN)/nudge roster import content/sample_roster.csv
	$(DEMO_ENV) $(BIN)/nudge digest send
	$(DEMO_ENV) $(BIN)/nudge digest preview maria.okafor@example.org --out outbox/preview.html
	$(DEMO_ENV) $(BIN)/nudge status
	@echo "outbox/digest holds $$(ls outbox/digest 2>/dev/null | wc -l) digest emails (.eml); open outbox/preview.html in a browser"

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(DEMO_DB) outbox .pytest_cache
