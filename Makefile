# Two entry points a newcomer needs: `make main` and `make test` (both install first).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install main speeds protocols full few-step few-step-protocols calibration oracle oracle-protocols test lock
install: $(VENV)/.installed

# scripts/install.sh installs the versions pinned in requirements.lock (torch aside; see `lock`)
$(VENV)/.installed: pyproject.toml requirements.lock scripts/install.sh
	scripts/install.sh $(VENV)
	touch $@

# Upgrade the pinned environment (README "Two commands"). requirements.lock pins every package
# that pathbench[dev,eval,logging] installs except torch, which scripts/install.sh pins on a
# CPU-only machine (torch==2.13.0) and leaves to pip with a GPU (a CUDA build). `make lock`
# installs a fresh venv unpinned (LOCK= : pip takes the newest versions pyproject.toml allows),
# then uv writes that venv's versions of the dependency closure; LOCK_FROM=VENV writes an
# existing venv's versions instead (how the committed lock was made). Review the diff, run
# `make test` (it reinstalls from the new lock), commit.
LOCK_FROM ?=
LOCK_VENV = $(or $(LOCK_FROM),.cache/lock-venv)
LOCK_TOOLS := .cache/lock-tools
lock:
	[ -x $(LOCK_TOOLS)/bin/uv ] || { python3 -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/pip install -q uv; }
	[ -n "$(LOCK_FROM)" ] || { rm -rf $(LOCK_VENV) && LOCK= scripts/install.sh $(LOCK_VENV); }
	$(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable > $(LOCK_TOOLS)/installed.txt
	$(LOCK_TOOLS)/bin/uv pip compile pyproject.toml --extra dev --extra eval --extra logging --quiet \
		--constraint $(LOCK_TOOLS)/installed.txt --no-emit-package torch --python $(LOCK_VENV)/bin/python \
		$(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS)) --annotation-style line \
		--custom-compile-command "make lock" -o requirements.lock
	# every pin comes via that constraint file: keep the packages that require it
	sed -i -E 's/ -c [^ ,]*installed\.txt,?//; s/,$$//' requirements.lock

# The main job on the embedded default: the KL-flow paper's Figure 2 diagnostic, then its three
# comparisons sized for a 2-core CPU (under 10 minutes in all; README "Two commands"): the geodesic
# ablation (3 seeds of every method, kl-flow protocol), the conditional table (headline -> lead,
# paper Table 5) and the code-infilling table (paper Table 6), each followed by its report,
# whose verdict tables are printed. Each sweep shows its progress and resumes where it stopped
# when the command is run again. The ablation report's quality-speed section reads the committed
# speeds.json (`make speeds`: generation re-timed on a quiet machine) where there is one, so the
# committed report does not change with the timings of each run.
ABLATION ?= geodesic_ablation_cpu_quick
RESULTS ?= results/geodesic_ablation_cpu
SIZE ?= _quick
main: install
	$(BIN)/pathbench study kl-curve --vocab 10 10000 --paths linear,fisher_rao,kl --samples 128 \
		--beta 0.01 --out results/kl_curve
	$(BIN)/pathbench sweep experiments/$(ABLATION).yaml --out runs/$(ABLATION)
	$(ABLATION_REPORT)
	$(BIN)/pathbench sweep experiments/conditional_cpu$(SIZE).yaml --out runs/conditional_cpu$(SIZE)
	$(BIN)/pathbench report runs/conditional_cpu$(SIZE) --out results/conditional_cpu$(SIZE) \
		--experiment experiments/conditional_cpu$(SIZE).yaml --title "Conditional generation: BBC headline -> lead (CPU, conditional_cpu$(SIZE))"
	$(BIN)/pathbench sweep experiments/code_cpu$(SIZE).yaml --out runs/code_cpu$(SIZE)
	$(BIN)/pathbench report runs/code_cpu$(SIZE) --out results/code_cpu$(SIZE) \
		--experiment experiments/code_cpu$(SIZE).yaml --title "Code infilling on held-out stdlib functions (CPU, code_cpu$(SIZE))"

ABLATION_REPORT = $(BIN)/pathbench report runs/$(ABLATION) --out $(RESULTS) --experiment experiments/$(ABLATION).yaml \
	--kl-curve results/kl_curve/kl_curve.csv --title "Geodesic ablation on BBC News (CPU, $(ABLATION))" \
	$(if $(wildcard $(RESULTS)/speeds.json),--speeds $(RESULTS)/speeds.json)

# The generation cost of the ablation's evaluations re-timed on a quiet machine (after `make main`:
# its checkpoints; 3 timed draws per setting after a warm-up), then its report re-drawn with them.
# Run it with nothing else on the cores; commit speeds.json with the report.
speeds: install
	$(BIN)/pathbench study speeds runs/$(ABLATION) --out $(RESULTS)/speeds.json
	$(ABLATION_REPORT)

# The protocol comparison: the quick ablation under kl-flow (already complete after `make main`:
# nothing is re-run) and again under `plain` (the baselines are shared, in the same folder),
# reported side by side.
protocols: install
	$(BIN)/pathbench sweep experiments/geodesic_ablation_cpu_quick.yaml --out runs/geodesic_ablation_cpu_quick
	$(BIN)/pathbench sweep experiments/geodesic_ablation_cpu_quick_plain.yaml --out runs/geodesic_ablation_cpu_quick
	$(BIN)/pathbench report runs/geodesic_ablation_cpu_quick --out results/geodesic_ablation_cpu/protocols \
		--experiment experiments/geodesic_ablation_cpu_quick.yaml \
		--experiment experiments/geodesic_ablation_cpu_quick_plain.yaml \
		--title "Geodesic ablation on BBC News: kl-flow vs plain protocol (CPU, quick size)"

# The larger CPU grids (under 60 minutes; README "Two commands"): the full ablation (all 7
# methods, 3 seeds), then the larger conditional and code tables.
full: install
	$(MAKE) main ABLATION=geodesic_ablation_cpu RESULTS=results/geodesic_ablation_cpu/full SIZE=

# The geodesic ablation on the oracle language (README "Oracle language"): data from a hidden
# Markov model, gen-PPL by its exact likelihood, the same law at V = 64 (control) and V = 8192,
# then the denoiser gap of every simplex run against the Bayes-optimal denoiser, then each report
# (the V = 8,192 one draws the Bayes curve beside each method's held-out cross-entropy).
oracle: install
	$(BIN)/pathbench sweep experiments/oracle_ablation_cpu_small_v.yaml --out runs/oracle_ablation_cpu_small_v
	$(BIN)/pathbench sweep experiments/oracle_ablation_cpu.yaml --out runs/oracle_ablation_cpu
	$(BIN)/pathbench study denoiser-gap runs/oracle_ablation_cpu_small_v runs/oracle_ablation_cpu --protocol kl-flow \
		--experiment experiments/oracle_ablation_cpu_small_v.yaml --experiment experiments/oracle_ablation_cpu.yaml \
		--out results/oracle_ablation_cpu/denoiser_gap
	$(BIN)/pathbench report runs/oracle_ablation_cpu_small_v --out results/oracle_ablation_cpu/v64 \
		--experiment experiments/oracle_ablation_cpu_small_v.yaml \
		--title "Geodesic ablation on the oracle language, V = 64 (the control; CPU)"
	$(BIN)/pathbench report runs/oracle_ablation_cpu --out results/oracle_ablation_cpu/v8192 \
		--experiment experiments/oracle_ablation_cpu.yaml --denoiser-gap results/oracle_ablation_cpu/denoiser_gap/denoiser_gap.json \
		--title "Geodesic ablation on the oracle language, V = 8,192 (CPU)"

# The same oracle grids under the `plain` protocol (the baselines are shared, in the same
# folders), reported beside kl-flow, and the denoiser gap of both protocols' simplex runs.
oracle-protocols: oracle
	$(BIN)/pathbench sweep experiments/oracle_ablation_cpu_small_v_plain.yaml --out runs/oracle_ablation_cpu_small_v
	$(BIN)/pathbench sweep experiments/oracle_ablation_cpu_plain.yaml --out runs/oracle_ablation_cpu
	$(BIN)/pathbench report runs/oracle_ablation_cpu_small_v --out results/oracle_ablation_cpu/protocols/v64 \
		--experiment experiments/oracle_ablation_cpu_small_v.yaml \
		--experiment experiments/oracle_ablation_cpu_small_v_plain.yaml \
		--title "Oracle language, V = 64: kl-flow vs plain protocol (CPU)"
	$(BIN)/pathbench report runs/oracle_ablation_cpu --out results/oracle_ablation_cpu/protocols/v8192 \
		--experiment experiments/oracle_ablation_cpu.yaml --experiment experiments/oracle_ablation_cpu_plain.yaml \
		--title "Oracle language, V = 8,192: kl-flow vs plain protocol (CPU)"
	$(BIN)/pathbench study denoiser-gap runs/oracle_ablation_cpu_small_v runs/oracle_ablation_cpu \
		--experiment experiments/oracle_ablation_cpu_small_v.yaml --experiment experiments/oracle_ablation_cpu_small_v_plain.yaml \
		--experiment experiments/oracle_ablation_cpu.yaml --experiment experiments/oracle_ablation_cpu_plain.yaml \
		--out results/oracle_ablation_cpu/protocols/denoiser_gap

few-step: install
	$(BIN)/pathbench sweep experiments/few_step_cpu.yaml --out runs/few_step_cpu
	$(BIN)/pathbench report runs/few_step_cpu --experiment experiments/few_step_cpu.yaml \
		--out results/few_step_cpu --title "Few-step regime on BBC News (CPU)"
	$(BIN)/python scripts/few_step_studies.py gaps kl-flow results/few_step_cpu

# The few-step grid under `plain` beside kl-flow (dfm and sedd shared, in the same folder), then
# automatic t*, the decoding-error warps and the warped euclidean run on its teachers.
few-step-protocols: few-step
	$(BIN)/pathbench sweep experiments/few_step_cpu_plain.yaml --out runs/few_step_cpu
	$(BIN)/pathbench report runs/few_step_cpu --out results/few_step_cpu/protocols \
		--experiment experiments/few_step_cpu.yaml --experiment experiments/few_step_cpu_plain.yaml \
		--title "Few-step regime on BBC News: kl-flow vs plain protocol (CPU)"
	$(BIN)/python scripts/few_step_studies.py gaps plain results/few_step_cpu/protocols

calibration: few-step-protocols
	$(BIN)/python scripts/few_step_studies.py calibration results/calibration_cpu

# lint (pyflakes + import order), the import rule (pyproject [tool.importlinter]), then the tests
test: install
	$(BIN)/ruff check harness paths baselines tasks integrations tests
	$(BIN)/lint-imports
	$(BIN)/python -m pytest
