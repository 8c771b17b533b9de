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

# The suite runs twice, with the wall clock moved far back and far ahead (time-machine):
# a test that leans on the calendar fails one of the two runs instead of a future CI.
TEST_DATES ?= 2024-02-29T23:30:00Z 2033-10-03T08:15:00Z

test: lint
	scripts/ensure-postgres
	@for now in $(TEST_DATES); do \
		echo "pytest with the wall clock at $$now"; \
		$(VENV)/bin/python -m pytest -q --fake-now $$now || exit 1; \
	done

clean:
	rm -rf $(VENV) dealbot-demo.db dealbot-demo.db-wal dealbot-demo.db-shm
