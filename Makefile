# Two set-up commands on a fresh machine: `make train` and `make test`.
# Both create .venv when missing and install the package into it first.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install train sweep report test chaos bench lint format clean

$(PY):
	python3 -m venv $(VENV)

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

train: install
	$(PY) train.py $(ARGS)

# The default study (conf/study/default.yaml) on the embedded task: optimizers x LRs (pruned),
# a finer LR grid, schedules, then seeds. ARGS go to every stage (ARGS="hydra/launcher=basic").
sweep: install
	$(PY) -m optsweep.study default $(ARGS)

# The report of a sweep dir (also written when a multirun ends): make report SWEEP=outputs/sweeps/default
SWEEP ?= outputs/sweeps/default
report: install
	$(PY) -m optsweep.report $(SWEEP) $(ARGS)

test: install
	$(PY) -m pytest -q $(ARGS)

# The fault test at full length: a real run SIGKILLed 24 times, at random moments and while
# writing checkpoints, with $TMPDIR on tmpfs. `make test` runs a short form (4 kills).
chaos: install
	$(PY) tests/chaos.py 24

# The pruning benchmark: the same grids with and without prune=asha, side by side, on the
# embedded OCR task and ../shared/data/cifar10-subset (bench/pruning.py; about 30 min on a
# 2-core CPU). ARGS="--quick" for a smoke run, ARGS="--task ocr" for one task.
bench: install
	$(PY) bench/pruning.py $(ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf outputs/* .pytest_cache .ruff_cache
