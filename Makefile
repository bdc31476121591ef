# Two commands on a fresh clone:  make demo  |  make test
# Both install what they need: Debian packages (unixodbc, odbc-mariadb, age, libjs-bootstrap4) and a venv.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# libjs-bootstrap4: the stylesheet of the Data Docs, bundled so that they open offline.
DEBIAN_PACKAGES := unixodbc odbc-mariadb age libjs-bootstrap4
# chromium: the report test renders the auditor report headless, as an auditor's browser would.
TEST_DEBIAN_PACKAGES := chromium
# pgloader and psql: the load benchmark measures them next to our load, in the same run.
BENCHMARK_DEBIAN_PACKAGES := pgloader postgresql-client
PYTEST_ARGS ?=
# Two test workers, each taking whole test files: the CI machine has 2 cores and most tests wait on a
# database or a child process. TEST_WORKERS=0 runs the suite in this one process. The files go out in
# the order tests/conftest.py gives (the longest first); xdist would otherwise send the files with the
# most tests first, and the slowest files, which hold one test or two, last: one worker ran the fleet
# deployment's 3 minutes alone at the end.
TEST_WORKERS ?= 2
XDIST_ORDER := $(if $(filter 0,$(TEST_WORKERS)),,--no-loadscope-reorder)

.PHONY: demo test check system-packages test-packages apt-install venv clean benchmark

# The demo ends with its outcome line (PASSED or FAILED); any other failure still says FAILED.
demo: venv
	@$(BIN)/ts24-migrate demo || { code=$$?; echo "make demo: FAILED (exit code $$code)"; exit $$code; }

test: venv test-packages
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(XDIST_ORDER) $(PYTEST_ARGS)

# The code habits of docs/architecture.md: the layers (import-linter), ruff, ruff format, mypy.
check: venv
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

benchmark: venv
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(BENCHMARK_DEBIAN_PACKAGES)"
	$(BIN)/python -m benchmarks

venv: system-packages $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Installs the Debian packages that are missing (root, or sudo when available).
system-packages:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(DEBIAN_PACKAGES)"

test-packages:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_DEBIAN_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get install -y --no-install-recommends $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends $$missing; }; \
	fi

clean:
	rm -rf $(VENV) demo-site work .pytest_cache
