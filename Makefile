# Two commands set up and run everything on a fresh machine:
#   make run    create .venv, install the project, build + validate the graph, print its statistics, serve it
#   make test   create .venv, install the project with its test dependencies, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-test build validate stats serve clean

run: setup build stats serve

test: setup-test
	@# pytest exits 5 when it collected no test: that must fail, not pass silently.
	@$(BIN)/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

build: setup
	$(BIN)/anemia-kg build

validate: setup
	$(BIN)/anemia-kg validate

stats: setup
	$(BIN)/anemia-kg stats

serve: setup
	$(BIN)/anemia-kg serve --host $(HOST) --port $(PORT)

clean:
	rm -rf data/build $(VENV)
