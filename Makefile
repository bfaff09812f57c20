# Two commands: `make run` and `make test`. Everything they need is installed
# on first use (a virtualenv, Python packages, web packages, and Debian
# packages through apt-get when missing).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PACKAGES := redis-server sip-tester chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test check bench system-deps clean

run: $(VENV)/.installed web/node_modules/.installed
	$(BIN)/gateway serve --dev

test: system-deps $(VENV)/.installed web/node_modules/.installed
	$(BIN)/ruff check gateway tests bench
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy
	$(BIN)/pytest

bench: system-deps $(VENV)/.installed
	$(BIN)/python -m bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# redis-server for the broker tests, sipp for SIP, chromium for the browser tests.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v sipp >/dev/null || missing="$$missing sip-tester"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) web/node_modules .mypy_cache .pytest_cache .ruff_cache
