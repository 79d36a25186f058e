# odelebm: `make test` runs every test, `make reproduce` regenerates the tables and figures.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of torch is pinned; override for a GPU machine, e.g. make install TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= cpu
BIN := $(VENV)/bin

.PHONY: install test test-cpus reproduce smoke lint-nb clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: install
	$(BIN)/python -m pytest -q tests

# The tests that train (marker `trains`) under every CPU kernel this machine has, on one thread, then the native kernel
# on two threads: what another machine would change. Run it before committing a change to training or to a margin.
CAPABILITIES = $(BIN)/python -c "import sys; sys.path.insert(0, 'tests'); from conftest import cpu_capabilities; print(*cpu_capabilities())"
test-cpus: install
	@set -e; caps=$$($(CAPABILITIES)); for cap in $$caps; do \
	  echo "== ATEN_CPU_CAPABILITY=$$cap, 1 thread"; \
	  ATEN_CPU_CAPABILITY=$$cap ODELEBM_TEST_THREADS=1 $(BIN)/python -m pytest -q -m trains tests; \
	done; \
	echo "== native CPU kernels, 2 threads"; ODELEBM_TEST_THREADS=2 $(BIN)/python -m pytest -q -m trains tests

reproduce: install
	$(BIN)/odelebm-reproduce --profile $(PROFILE)

smoke: install
	$(BIN)/odelebm-reproduce --profile smoke

# Strip notebook metadata/outputs and regenerate the package from the notebooks.
lint-nb: install
	$(BIN)/nbdev-clean && $(BIN)/nbdev-export

clean:
	rm -rf runs .pytest_cache
