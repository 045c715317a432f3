# paramsym: `make demo` runs the tool on a bundled example, `make test` runs the tests.
# Everything is installed into .venv by this file; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-test bench check-language wheel fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The tool and its four runtime dependencies.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

# Plus the test tools and the frameworks the tests compare against (torch is the pinned CPU build).
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/paramsym count examples/resnet50.psym --fold
	$(BIN)/paramsym count examples/resnet18_symbolic.psym --fold
	$(BIN)/paramsym explain "input(24x24x3) > conv3x3(->10, bias)"

test: install-test
	$(BIN)/python -m pytest -q

# The long run of the generated-program property tests (docs/fuzzing.md records the last one):
# 20,000 programs each against PyTorch, as broken variants, through the round trip and at the edges of what
# PyTorch accepts (both ways), 1,000 against Keras.
fuzz: install-test
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_export.py tests/test_import.py tests/test_refuse.py \
		--hypothesis-profile=fuzz --hypothesis-show-statistics \
		-k "property_random_programs_match_torch or property_broken or property_round_trip or property_paramsym_accepts"
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_export.py --hypothesis-profile=deep \
		-k "property_random_programs_match_keras" --hypothesis-show-statistics

bench: install
	$(BIN)/python benchmarks/bench.py

# The language reference's worked examples (needs ../shared beside this checkout).
check-language: install
	../shared/check-language $(BIN)/paramsym

wheel: install-test
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) dist build .pytest_cache .hypothesis
