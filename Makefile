# Two commands do all setup: `make run` starts the app, `make test` runs the whole suite.
# Both create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SYSTEM_PACKAGES := libpulse0 libxcb-icccm4 libxcb-keysyms1 chromium xvfb xauth ffmpeg webp imagemagick libimage-exiftool-perl
TEST_TIMEOUT ?= 1500

export QT_LOGGING_RULES ?= qt.multimedia.*=false

.PHONY: run test lint bench package system-deps venv screenshots docs-graph clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

# Installs the Qt, browser and video libraries when run as root on Debian/Ubuntu; otherwise only
# says what is missing.
system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing system packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "Missing system packages (install them as root):$$missing"; fi; \
	fi

run: $(STAMP)
	$(VENV)/bin/civitgrab

test: system-deps $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	mkdir -p -m 0700 /tmp/runtime-$$(id -u)
	XDG_RUNTIME_DIR=/tmp/runtime-$$(id -u) QT_QPA_PLATFORM=offscreen \
	PYTHON_KEYRING_BACKEND=keyring.backends.null.Keyring \
	timeout -k 10 $(TEST_TIMEOUT) $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m tests.benchmarks.download --json
	$(PY) -m tests.benchmarks.verify_faults --json
	$(PY) -m tests.benchmarks.tags --json
	$(PY) -m tests.benchmarks.convert --json
	$(PY) -m tests.benchmarks.gallery --json

# docs/screenshots/*.png: every page at 1280x800, light and dark, under Xvfb against the replica.
screenshots: system-deps $(STAMP)
	mkdir -p -m 0700 /tmp/runtime-$$(id -u)
	XDG_RUNTIME_DIR=/tmp/runtime-$$(id -u) $(PY) -m tests.gui.make_screenshots

# docs/import-graph.{dot,svg}: the import graph of docs/ARCHITECTURE.md, drawn from the code
# (the SVG needs Graphviz's `dot`: apt-get install graphviz).
docs-graph: $(STAMP)
	$(PY) docs/import_graph.py

package: system-deps $(STAMP)
	$(PY) packaging/build.py

clean:
	rm -rf build dist .pytest_cache
