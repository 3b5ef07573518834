# Two commands a stranger needs: `make run` and `make test`. Each bootstraps .venv by itself:
# the pinned versions of requirements-test.lock, then the project itself (editable, no deps).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check
STAMP  := $(VENV)/.installed-stamp
# uv writes the lock files: `make lock` after changing the dependencies in pyproject.toml
# (keeps every pin that still fits), `make lock-upgrade` for the newest versions allowed.
UV_VERSION ?= 0.13.9
COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
          --generate-hashes --custom-compile-command "make lock"

.PHONY: run test preview bench demo lint lock lock-upgrade clean

$(STAMP): pyproject.toml requirements-test.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r requirements-test.lock
	$(PIP) install --quiet --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)  ## the service; settings from the environment or .env
	$(VENV)/bin/feed-tweeter run

# The suite mostly waits on loopback servers and subprocesses: four workers (pytest-xdist)
# finish it in about 2 minutes instead of 5.
test: $(STAMP)  ## the whole test suite
	$(PY) -m pytest -n 4 $(PYTEST_ARGS)

preview: $(STAMP)  ## `make preview URL=…`: the tweets a feed's newest articles would become
	@test -n "$(URL)" || { echo 'usage: make preview URL=https://your.blog/feed.xml'; exit 2; }
	$(VENV)/bin/feed-tweeter preview "$(URL)"

bench: $(STAMP)  ## benchmarks (never part of `make test`)
	$(PY) -m bench

demo: $(STAMP)  ## offline demo: local blog + local fake X + the bot
	$(PY) -m demo

lint: $(STAMP)
	$(PIP) install --quiet ruff mypy
	$(PY) -m ruff check bot tests
	$(PY) -m mypy bot

lock: ## requirements.lock (the service) and requirements-test.lock (+ the test extra)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet uv==$(UV_VERSION)
	$(COMPILE) $(LOCK_ARGS) -o requirements.lock
	$(COMPILE) $(LOCK_ARGS) --extra test --constraint requirements.lock -o requirements-test.lock

lock-upgrade:
	$(MAKE) lock LOCK_ARGS=--upgrade

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
