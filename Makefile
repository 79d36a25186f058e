# odelebm: `make test` runs every test, `make reproduce` regenerates the tables and figures.
PYTHON ?= python3
VENV   ?= .venv
# The CPU build of torch is pinned; override for a GPU machine, e.g. make install TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
PROFILE ?= cpu
BIN := $(VENV)/bin

.PHONY: install test reproduce smoke lint-nb clean
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

test: install
	$(BIN)/python -m pytest -q tests

reproduce: install
	$(BIN)/odelebm-reproduce --profile $(PROFILE)

smoke: install
	$(BIN)/odelebm-reproduce --profile smoke

# Strip notebook metadata/outputs and regenerate the package from the notebooks.
lint-nb: install
	$(BIN)/nbdev-clean && $(BIN)/nbdev-export

clean:
	rm -rf runs .pytest_cache
