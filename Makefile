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

# Two workers: most tests wait on a subprocess's start or a file, so two share the 2 cores of
# a small machine well. Each test file runs on one worker, so a module's fixtures run once.
test: install
	$(PY) -m pytest -q -n 2 --dist loadfile $(ARGS)

# The fault test at full length: a real run SIGKILLed 24 times, at random moments and while
# writing checkpoints, with $TMPDIR on tmpfs. `make test` runs a short form (4 kills).
chaos: install
	$(PY) tests/chaos.py 24

# The benchmarks, each a script in bench/ timing a figure against a yardstick measured in the
# same run, writing outputs/bench/<name>.md and <name>.json; `make bench` ends with the table of
# every figure it measured (outputs/bench/README.md). The default list takes about 20 min on a
# 2-core CPU:
#   harness     python train.py against a plain PyTorch loop doing the same work (target <= 1.03)
#   augment     batched augmentation against torchvision's per-sample pipelines, images/s
#   trial_start the time from the launcher starting a trial to its first training step
#   sweep_wall  a 2x2 grid under hydra/launcher=local against the same grid under basic
# Two more, by name:
#   pruning     the same grids with and without prune=asha, on the embedded OCR task and
#               ../shared/data/cifar10-subset (about 80 min on a 2-core CPU)
#   optimizers  adam, sgd, muon, schedulefree_adamw, prodigy, lion and sam on the CIFAR-10
#               subset, each at its best LR, over 3 seeds (about 15 min)
# `make bench BENCH=pruning ARGS="--quick"` runs one; ARGS go to each (all take --quick).
BENCH ?= harness augment trial_start sweep_wall
bench: install
	mkdir -p outputs/bench
	for name in $(BENCH); do rm -f outputs/bench/$$name.json; \
		$(PY) bench/$$name.py $(ARGS) || exit 1; done
	$(PY) bench/table.py $(BENCH)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf outputs/* .pytest_cache .ruff_cache
