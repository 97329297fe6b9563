# Two entry points a newcomer needs: `make main` and `make test` (both install first).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install main full few-step test
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV)
	touch $@

# The main job on the embedded default: the KL-flow paper's Figure 2 diagnostic, then the
# geodesic ablation sized for a 2-core CPU (about 10 minutes), then its report. A run that was
# interrupted resumes where it stopped when the command is run again.
ABLATION ?= geodesic_ablation_cpu_quick
RESULTS ?= results/geodesic_ablation_cpu
main: install
	$(BIN)/pathbench kl-curve --vocab 10 10000 --paths linear,fisher_rao,kl --samples 256 \
		--beta 0.01 --out results/kl_curve
	$(BIN)/pathbench sweep experiments/$(ABLATION).yaml --out runs/$(ABLATION)
	$(BIN)/pathbench report runs/$(ABLATION) --out $(RESULTS) --experiment experiments/$(ABLATION).yaml \
		--kl-curve results/kl_curve/kl_curve.csv --title "Geodesic ablation on BBC News (CPU, $(ABLATION))"

# The full CPU ablation (≈53 min on a 2-core VM, estimated from per-unit timings; VMs vary), then the few-step comparison on its checkpoints.
full:
	$(MAKE) main ABLATION=geodesic_ablation_cpu RESULTS=results/geodesic_ablation_cpu/full

few-step: install
	$(BIN)/pathbench sweep experiments/few_step_cpu.yaml --out runs/geodesic_ablation_cpu
	$(BIN)/pathbench report runs/geodesic_ablation_cpu --experiment experiments/few_step_cpu.yaml \
		--out results/few_step_cpu --title "Few-step regime on BBC News (CPU)"

test: install
	$(BIN)/python -m pytest
