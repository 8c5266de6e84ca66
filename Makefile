# The two quick-start commands (`make demo`, `make test`) create a virtual environment in .venv,
# install the package into it, and run. Override PYTHON to choose the interpreter.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Data come through the project's fetch-and-verify code; next to ../shared/data (CI, offline
# machines) that directory is the mirror standing in for the download URLs.
export LSTM_SCRATCH_MIRROR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: demo test bench notebooks install clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed      ## the main job: a reduced JSB study of the nine architectures and its report
	$(VENV)/bin/lstm-odyssey demo

test: $(VENV)/.installed      ## the whole test suite, tutorials included
	$(PY) -m pytest -q

notebooks: $(VENV)/.installed ## executed tutorials/NN_*.ipynb with outputs and figures (FAST=1: small sizes)
	$(PY) tutorials/_notebooks.py $(if $(FAST),--fast,)

bench: $(VENV)/.installed     ## the benchmarks, against PyTorch (a benchmark-only dependency)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) benchmarks/bench_layers.py --startup
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_ctc.py
	$(PY) benchmarks/bench_bidirectional.py

clean:
	rm -rf $(VENV) build *.egg-info
