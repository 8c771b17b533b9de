# Two commands on a fresh machine: `make demo` and `make test`. Both install what they need.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/dealbot demo

serve: $(STAMP)
	$(VENV)/bin/dealbot serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	scripts/ensure-postgres
	$(VENV)/bin/python -m pytest -q

clean:
	rm -rf $(VENV) dealbot-demo.db dealbot-demo.db-wal dealbot-demo.db-shm
