# Two entry points a newcomer needs: `make main` and `make test` (both install first).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install main test
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install.sh
	scripts/install.sh $(VENV)
	touch $@

# The main job on the embedded default (until the geodesic-ablation run lands): the KL-flow
# paper's Figure 2 diagnostic, written to results/kl_curve/.
main: install
	$(BIN)/pathbench kl-curve --vocab 10 10000 --paths linear,fisher_rao,kl --samples 256 \
		--beta 0.01 --out results/kl_curve

test: install
	$(BIN)/python -m pytest
