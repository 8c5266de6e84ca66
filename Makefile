# The two quick-start commands (`make demo`, `make test`) create a virtual environment in .venv,
# install the package into it, and run. Override PYTHON to choose the interpreter.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Data come through the project's fetch-and-verify code; next to ../shared/data (CI, offline
# machines) that directory is the mirror standing in for the download URLs.
export LSTM_SCRATCH_MIRROR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)

.PHONY: demo test bench notebooks install clean jsb-study jsb-publish jsb-report jzs-benchmark jzs-publish jzs-report

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

bench: $(VENV)/.installed     ## the benchmarks against PyTorch (a benchmark-only dependency), and two threads against one
	$(PY) -m pip install -q torch==2.13.0
	$(PY) benchmarks/bench_layers.py --startup
	$(PY) benchmarks/bench_model.py
	$(PY) benchmarks/bench_ctc.py
	$(PY) benchmarks/bench_bidirectional.py

# The full JSB study of issue 11 (9 architectures × 200 trials, the paper's protocol, float64): about
# 13.2 core-hours (measured: README "Results"). Resumable: run it again after an interruption. Its trial directories (checkpoints,
# parameters) stay out of version control; what is published is study.json, trials.csv (one row per
# trial), records.jsonl.gz (the run records, no parameters) and report/.
JSB := results/jsb-study
jsb-study: $(VENV)/.installed ## run (or resume) the full JSB study, then publish its table, records and report
	test -f $(JSB)/study.json || $(VENV)/bin/lstm-odyssey search create $(JSB) --task jsb --archs all --trials 200 --seed 0
	# a clone (or a new machine) has the published records but not the trial directories: put them back
	if [ ! -d $(JSB)/trials ] && [ -f $(JSB)/records.jsonl.gz ]; then \
	  $(VENV)/bin/lstm-odyssey search restore $(JSB) --records $(JSB)/records.jsonl.gz; fi
	$(VENV)/bin/lstm-odyssey search run $(JSB) $(if $(WORKERS),--workers $(WORKERS),)
	$(MAKE) jsb-publish

jsb-publish: $(VENV)/.installed ## table and records from the study's trial directories, then the report
	$(VENV)/bin/lstm-odyssey search export $(JSB) --csv $(JSB)/trials.csv --records $(JSB)/records.jsonl.gz
	$(MAKE) jsb-report

jsb-report: $(VENV)/.installed ## the JSB report again from the committed table alone (no training, no Numba)
	$(VENV)/bin/lstm-odyssey report $(JSB)/trials.csv --out $(JSB)/report

# JZS's benchmark of issue 13 (five tasks × ten cells, protocol jzs, CPU-sized trials): TRIALS per cell
# (default 20: 8.06 core-hours measured; the stated budget is 100, ≈ 40). Resumable, like jsb-study, and published
# like it: benchmark.json, per task study.json + trials.csv + records.jsonl.gz, and report/.
JZS := results/jzs-benchmark
jzs-benchmark: $(VENV)/.installed ## run (or resume) JZS's benchmark, then publish its tables, records and report
	$(VENV)/bin/lstm-odyssey jzs create $(JZS) --trials $(or $(TRIALS),20)
	# a clone has each study's published records but not its trial directories: put them back
	for study in $(JZS)/*/; do if [ ! -d $${study}trials ] && [ -f $${study}records.jsonl.gz ]; then \
	  $(VENV)/bin/lstm-odyssey search restore $$study --records $${study}records.jsonl.gz || exit 1; fi; done
	$(VENV)/bin/lstm-odyssey jzs run $(JZS) $(if $(WORKERS),--workers $(WORKERS),)
	$(MAKE) jzs-publish

jzs-publish: $(VENV)/.installed ## each study's table and records from its trial directories, then the report
	$(VENV)/bin/lstm-odyssey jzs export $(JZS)
	$(MAKE) jzs-report

jzs-report: $(VENV)/.installed ## JZS's Table 1 report again from the committed tables alone (no training, no Numba)
	$(VENV)/bin/lstm-odyssey jzs report $(JZS) --out $(JZS)/report --published

clean:
	rm -rf $(VENV) build *.egg-info
