# paramsym: `make demo` runs the tool on a bundled example, `make test` runs the tests.
# Everything is installed into .venv by this file; nothing needs installing by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint mypy-baseline install install-test install-docs docs serve-docs bench bench-cost bench-import bench-playground screenshots import-sweep hf-sweep check-language wheel fuzz clean

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

# Plus mkdocs-material, which builds the documentation site.
$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[docs]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
install-docs: $(VENV)/.installed-docs

demo: install
	$(BIN)/paramsym count examples/resnet50.psym --fold
	$(BIN)/paramsym count examples/resnet18_symbolic.psym --fold
	$(BIN)/paramsym explain "input(24x24x3) > conv3x3(->10, bias)"

test: install-test
	$(BIN)/python -m pytest -q

# ruff (format and lint, 120 columns; settings in pyproject.toml) over everything Python in the repository, then
# mypy over the package: no error that mypy-baseline.txt does not list, and no entry there that no longer occurs.
LINTED := src tests benchmarks docs/playground/playground.py docs/playground/serve.py
lint: install-test
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/mypy | $(BIN)/mypy-baseline filter

# Rewrite mypy-baseline.txt from today's mypy errors (after fixing some, or to accept new ones, which a review
# should question).
mypy-baseline: install-test
	$(BIN)/mypy | $(BIN)/mypy-baseline sync

# The long run of the generated-program property tests (docs/fuzzing.md records the last one):
# 20,000 programs each against PyTorch, as broken variants, through the round trip and at the edges of what
# PyTorch accepts (both ways), 1,000 against Keras; 2,000 programs whose formulas grow (powers, let chains, symbolic
# strides and pads) each answered or refused within 30 s.
fuzz: install-test
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_export.py tests/test_import.py tests/test_refuse.py \
		tests/test_blowups.py --hypothesis-profile=fuzz --hypothesis-show-statistics \
		-k "property_random_programs_match_torch or property_broken or property_round_trip or property_paramsym_accepts \
		or property_growing_programs_answer_in_time"
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_export.py --hypothesis-profile=deep \
		-k "property_random_programs_match_keras" --hypothesis-show-statistics

bench: install
	$(BIN)/python benchmarks/bench.py

# What the memory and cost quantities (issue 21) add to a 10,000-layer `paramsym count`, against main before them.
bench-cost: install
	$(BIN)/python benchmarks/cost_overhead.py

# paramsym.from_torch's time with the model built (ResNet-50, ViT, GPT-2, Llama-2-7B and -3-70B on meta) and
# `paramsym import` end to end (benchmarks/README.md records the figures).
bench-import: install-test
	$(BIN)/python benchmarks/import_speed.py

# paramsym.from_torch over one model of each timm family and every torchvision classification model, each
# re-checked against the model (docs/zoo.md, Importing timm, records the last run); SWEEP="--all" for every timm model.
import-sweep: install-test
	$(BIN)/python benchmarks/import_sweep.py $(SWEEP)

# Every model_type of transformers (CONFIG_MAPPING) from a small config on the meta device, imported and re-checked
# (benchmarks/README.md); HF_SWEEP="--flags" also flips each yes/no field of the families paramsym reads.
hf-sweep: install-test
	$(BIN)/python benchmarks/hf_sweep.py --out benchmarks/hf_sweep.md $(HF_SWEEP)

# The playground in headless Chromium: cold load to the first result; each keystroke on ResNet-152 and on
# 10,000 layers with the LaTeX tab open (key to next frame, long tasks, apart from the worker's time to a
# result); a run past the 10 s time limit (benchmarks/README.md); --screenshots also writes docs/images/playground*.png.
bench-playground: install-test docs
	$(BIN)/python benchmarks/playground.py

# The playground's tour at 390, 1024 and 1920 px (tests/test_playground_tour.py), its screenshots into docs/images.
screenshots: install-test docs
	PARAMSYM_SCREENSHOTS=docs/images $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_playground_tour.py

# The language reference's worked examples (needs ../shared beside this checkout).
check-language: install
	../shared/check-language $(BIN)/paramsym

wheel: install-test
	$(BIN)/python -m build --wheel --outdir dist .

# The documentation site (site/, docs/playground.md is the playground) with mkdocs --strict: a broken link fails.
# The playground runs paramsym in the browser with Pyodide; everything it loads is bundled beside the page:
# the Pyodide core and KaTeX from npm (pinned in docs/playground/package-lock.json), the pure-Python wheels
# below from PyPI and paramsym's own wheel, built here.
PLAYGROUND        := docs/playground
PLAYGROUND_BUILD  := build/playground
PLAYGROUND_WHEELS := sympy==1.14.0 mpmath==1.3.0 lark==1.3.1

$(PLAYGROUND)/node_modules/.package-lock.json: $(PLAYGROUND)/package.json $(PLAYGROUND)/package-lock.json
	cd $(PLAYGROUND) && npm ci --no-audit --no-fund --loglevel=error

$(PLAYGROUND_BUILD)/.wheels: Makefile | $(BIN)/python
	rm -rf $(PLAYGROUND_BUILD) && mkdir -p $(PLAYGROUND_BUILD)
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
		-d $(PLAYGROUND_BUILD) $(PLAYGROUND_WHEELS)
	touch $@

docs: $(VENV)/.installed-docs $(PLAYGROUND)/node_modules/.package-lock.json $(PLAYGROUND_BUILD)/.wheels
	rm -f $(PLAYGROUND_BUILD)/paramsym-*.whl
	$(BIN)/python -m pip wheel --quiet --disable-pip-version-check --no-deps -w $(PLAYGROUND_BUILD) .
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -f docs/mkdocs/mkdocs.yml
	$(BIN)/python $(PLAYGROUND)/bundle.py site $(PLAYGROUND_BUILD)
	node $(PLAYGROUND)/compile.mjs site/playground

# The site on http://localhost:8000/ (the playground needs http: a browser does not run WebAssembly from file://),
# each file sent as its .br or .gz copy where the browser accepts it (docs/playground/serve.py).
serve-docs: docs
	$(BIN)/python $(PLAYGROUND)/serve.py site --port 8000

clean:
	rm -rf $(VENV) dist build site .pytest_cache .hypothesis .mypy_cache .ruff_cache
