# gmstep: all set-up is done by `make install`; `make demo` and `make test` call it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: install demo test test-rest test-all lint layers bench bench-gpu clean fashion-data

install: $(STAMP) fashion-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[test,gan,cluster,xarray]'
	touch $(STAMP)

# The real Fashion-MNIST images come from Debian's package; install it where we can (root + apt).
fashion-data:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
		|| echo "warning: could not install dataset-fashion-mnist; Fashion-MNIST presets need it"; \
	else echo "note: Fashion-MNIST not found; run 'apt-get install dataset-fashion-mnist' as root or set GMSTEP_FASHION_MNIST"; fi

demo: install
	$(BIN)/gmstep reproduce fig1a --quick

# The fast default: lint, types, and every test not marked slow or subprocess.
test: install
	$(BIN)/python -m ruff check src tests benchmarks
	$(BIN)/python -m mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -m "not slow and not subprocess"

# The rest: moderate-size checks of the paper's claims and the tests that drive the installed command.
test-rest: install
	$(BIN)/python -m pytest -q -m "slow or subprocess"

# Everything (what .ci/run does).
test-all: test test-rest

# The layering of docs/ARCHITECTURE.md alone ([tool.importlinter] in pyproject.toml; also in `make test`).
layers: install
	$(BIN)/lint-imports

bench: install
	$(BIN)/python benchmarks/run.py

# The torch backend on the GPU it finds (the CPU with a warning; add ARGS=--small there).
bench-gpu: install
	$(BIN)/python benchmarks/gpu_speed.py $(ARGS)

clean:
	rm -rf $(VENV) results build src/*.egg-info
