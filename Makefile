# Set-up and everyday commands. `make demo` and `make test` create .venv when missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The shared data folder beside a checkout holds nilearn's Smith 2009 maps for offline use.
SHARED_NILEARN_DATA := $(abspath ../shared/data/nilearn_data)
ifneq ($(wildcard $(SHARED_NILEARN_DATA)),)
export NILEARN_DATA ?= $(SHARED_NILEARN_DATA)
endif

.PHONY: demo test bench bench-quick lint clean

$(BIN)/nilearn-stca: setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $@

demo: $(BIN)/nilearn-stca
	$(BIN)/nilearn-stca demo --out stca_demo

test: $(BIN)/nilearn-stca
	$(BIN)/python -m pytest -n 2 tests

# The measurements recorded in benchmarks/README.md (about 4 hours on 2 cores), and a
# smoke run of every benchmark at a small size (a few minutes).
BENCHMARKS := stca_speed sweep_memory states_memory method_stability sliding_baselines sdl_alpha autoencoder_widths hcp_subject one_pass stca_learning

bench: $(BIN)/nilearn-stca
	for name in $(BENCHMARKS); do $(BIN)/python -m benchmarks.$$name || exit 1; done
	$(BIN)/python -m benchmarks.sliding_baselines --n-jobs 2

bench-quick: $(BIN)/nilearn-stca
	for name in $(BENCHMARKS); do $(BIN)/python -m benchmarks.$$name --quick || exit 1; done

lint: $(BIN)/nilearn-stca
	$(BIN)/ruff check nilearn_stca tests tutorials benchmarks
	$(BIN)/ruff format --check nilearn_stca tests tutorials benchmarks

clean:
	rm -rf $(VENV) stca_demo .pytest_cache
