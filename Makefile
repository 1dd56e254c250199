# Two commands set up and run everything on a fresh machine:
#   make run    create .venv, install the project, build + validate the graph, print its statistics, serve it
#   make test   create .venv, install the project with its test dependencies, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test setup setup-test web build validate stats serve clean

run: setup build stats serve

test: setup-test
	@# pytest exits 5 when it collected no test: that must fail, not pass silently.
	@$(BIN)/pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

setup: $(VENV)/.installed web

setup-test: $(VENV)/.installed-test web

# The SPARQL page's editor, YASGUI, bundled from npm (web/package-lock.json) into web/vendor/yasgui/: the browser
# loads it from this server, never from a CDN. Needs Node.js 20+ and npm; redone only when the lockfile,
# web/package.json or web/bundle.py change. web/bundle.py fails if the files would load anything remote.
YASGUI := web/vendor/yasgui
web: $(YASGUI)/yasgui.min.js $(YASGUI)/yasgui.min.css

$(YASGUI)/yasgui.min.js $(YASGUI)/yasgui.min.css &: web/package-lock.json web/package.json web/bundle.py
	$(PYTHON) web/bundle.py

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
