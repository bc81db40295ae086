# NovaBilling developer commands. Everything goes through uv (installed from PyPI if missing).
SHELL := /bin/bash
PY ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PY) -m uv")

.PHONY: run test lint typecheck unit sync uv migrate worker bench clean

uv:
	@command -v uv >/dev/null 2>&1 || $(PY) -m uv --version >/dev/null 2>&1 || \
		$(PY) -m pip install --quiet uv || $(PY) -m pip install --quiet --user uv

sync: uv
	@$(UV) sync --frozen --quiet

migrate: sync
	$(UV) run novabilling migrate

run: sync
	$(UV) run novabilling serve

worker: sync
	$(UV) run novabilling worker

lint: sync
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run mypy

unit: sync
	$(UV) run pytest -n 2 --dist loadfile -q --durations=25

test: lint unit

bench: sync
	$(UV) run python bench/load.py --help

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
