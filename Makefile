# hubgate developer tasks. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# make demo PORT=8080 IDP_PORT=8081: hubgate's port and its development IdP's.
PORT     ?= 8000
IDP_PORT ?= 8001

.PHONY: help setup system-deps check test test-sqlite test-postgres bench demo clean

help:
	@echo "make setup        create $(VENV) and install hubgate with its pinned dev tools"
	@echo "make system-deps  install what the end-to-end tests drive: nginx, Caddy, SimpleSAMLphp (Debian), oidc-provider (npm ci)"
	@echo "make check        ruff, mypy and the import-linter contracts (.importlinter)"
	@echo "make test         the whole suite on SQLite, then on PostgreSQL if HUBGATE_TEST_DATABASE_URL is set"
	@echo "make bench        print the benchmark figures (bench/*.py)"
	@echo "make demo         run 'hubgate demo' on ports 8000 and 8001 (the dev IdP): PORT=... IDP_PORT=... to change them"

$(BIN)/hubgate: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

setup: $(BIN)/hubgate

system-deps:
	bash scripts/install-system-deps.sh
	bash scripts/install-node-deps.sh

check: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup system-deps
	bash scripts/test.sh

bench: setup
	$(BIN)/python bench/floor.py
	$(BIN)/python bench/access.py
	$(BIN)/python bench/assertion.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/security_headers.py
	$(BIN)/python bench/saml.py
	cd bench && ../$(BIN)/python saml_acs.py
	$(BIN)/python bench/login.py
	$(BIN)/python bench/login.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_login
	$(BIN)/python bench/oidc.py
	$(BIN)/python bench/scim.py
	$(BIN)/python bench/scim.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/hubgate_bench_scim

demo: setup
	$(BIN)/hubgate demo --port $(PORT) --idp-port $(IDP_PORT)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache hubgate-demo.db*
