# pgdeck: the README's commands. Each target installs what it needs by itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench postgres venv clean

demo: venv postgres
	@# compiled once, as an installed package is: the console then starts ~0.1 s sooner
	@$(BIN)/python -m compileall -q services sandbox tui widgets
	$(BIN)/pgdeck demo

# Two workers: the suite mostly waits on its servers. A test marked serial (a real
# terminal driven by tmux, timing-sensitive) runs alone afterwards.
test: venv postgres lint
	$(BIN)/python -m pytest -q -n 2 -m "not serial"
	$(BIN)/python -m pytest -q -m serial

lint: venv
	$(BIN)/ruff check services sandbox tui widgets tests bench
	$(BIN)/ruff format --check services sandbox tui widgets tests bench
	$(BIN)/mypy services sandbox

bench: venv postgres
	$(BIN)/python bench/catalog_bench.py
	$(BIN)/python bench/restore_bench.py
	$(BIN)/python bench/tui_bench.py
	$(BIN)/python bench/review_bench.py
	$(BIN)/python bench/restore_test_bench.py

venv: $(STAMP)

# One resolver run with the pinned constraints: kubernetes and botocore disagree on
# python-dateutil, and installing them one after the other silently breaks one.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# PostgreSQL's server binaries (initdb, pg_ctl, postgres) and client (psql, pg_dumpall).
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 \
	   || { [ -n "$$PGDECK_PG_BINDIR" ] && [ -x "$$PGDECK_PG_BINDIR/initdb" ]; }; then \
	  true; \
	else \
	  echo "installing PostgreSQL server binaries with apt-get"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
