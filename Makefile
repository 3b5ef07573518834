# Two commands a stranger needs: `make run` and `make test`. Each bootstraps .venv by itself.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench demo lint clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)  ## the service; settings from the environment or .env
	$(PY) -m bot run

test: $(STAMP)  ## the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)  ## benchmarks (never part of `make test`)
	$(PY) -m bench

demo: $(STAMP)  ## offline demo: local blog + local fake X + the bot
	$(PY) -m demo

lint: $(STAMP)
	$(PY) -m pip install --quiet ruff mypy
	$(PY) -m ruff check bot tests
	$(PY) -m mypy bot

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
