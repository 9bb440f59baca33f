# The two commands of the README: `make run` and `make test`.  Both work on a fresh
# machine: they create .venv, install the project, and the Debian tools the tests use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEBIAN_TOOLS := chattr:e2fsprogs chromium:chromium dovecot:dovecot-imapd

.PHONY: install system-deps run test lint wheel-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=""; for pair in $(DEBIAN_TOOLS); do \
	  command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

run: install
	$(BIN)/gateway serve

# The tests run in TEST_WORKERS processes (pytest-xdist; 0 = one process), one per core of the
# CI machine: more would crowd the tests that time themselves.  Each worker has its own
# database, temporary directory, broker namespace and block of ports.
TEST_WORKERS ?= 2
test: install system-deps
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff check gateway inbound outbound rules tests bench
	$(BIN)/mypy gateway inbound outbound rules tests bench

wheel-check: install
	$(BIN)/python .ci/wheel-check

bench: install
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) var .pytest_cache
