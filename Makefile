# crimelens: `make demo` runs the main job on built-in data; `make test` runs every check.
# Both create .venv if missing and install pinned dependencies (constraints.txt).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP_VERSION := 26.3
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: demo test lint typecheck pytest system-deps screenshots bench bench-everyday bench-alerts bench-models bench-forecast bench-50m clean lock

demo: $(RUNTIME_STAMP)
	$(VENV)/bin/crimelens demo

test: $(TEST_STAMP) system-deps lint typecheck pytest

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check pip==$(PIP_VERSION)

# an editable install leaves crimelens' own modules uncompiled, and PYTHONDONTWRITEBYTECODE (set on some machines)
# stops Python caching them: byte-compile them once, as a regular pip install does (0.15 s off every command)
$(RUNTIME_STAMP): pyproject.toml constraints.txt | $(PY)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e .
	$(PY) -m compileall -q src/crimelens
	touch $@

$(TEST_STAMP): pyproject.toml constraints.txt $(RUNTIME_STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

# lint-imports: the architecture contracts in pyproject.toml ([tool.importlinter]); fails on any upward import
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/lint-imports

typecheck: $(TEST_STAMP)
	$(VENV)/bin/mypy

pytest: $(TEST_STAMP) system-deps
	$(VENV)/bin/pytest -q -p no:cacheprovider

# The README's screenshots: the Chromium tests write them to tests/artifacts/; copy them to docs/images/.
screenshots: $(TEST_STAMP) system-deps
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/test_report_browser.py
	cp tests/artifacts/report_toronto.png tests/artifacts/report_state_map.png tests/artifacts/report_comparison.png docs/images/

bench: $(TEST_STAMP) system-deps
	$(PY) bench/run.py
	$(PY) bench/everyday.py
	$(PY) bench/alerts_backtest.py
	$(PY) bench/model_bench.py
	$(PY) bench/forecast_bench.py

# Everyday commands (loads, rank, trends, findings, incidents, report) on the real shared data, each against a
# DuckDB floor measured in the same run; rewrites the "Everyday commands" section of bench/RESULTS.md (~5 min).
bench-everyday: $(RUNTIME_STAMP)
	$(PY) bench/everyday.py

# Spike detectors on real series (Chicago 2022 community-area weeks, Toronto neighbourhood weeks, Marshall
# jurisdiction-years) with injected spikes, at a calibrated false-alarm rate next to an oracle; rewrites the
# "Alerts backtest" section of bench/RESULTS.md.
bench-alerts: $(RUNTIME_STAMP)
	$(PY) bench/alerts_backtest.py

# A full `crimelens model classify` evaluation (Marshall rise and top quartile, Chicago 2022 community-area weeks),
# each a fresh process, median of 3, against a plain scikit-learn notebook on the same features in the same run;
# rewrites the "Model evaluation" section of bench/RESULTS.md (~4 min).
bench-models: $(RUNTIME_STAMP)
	$(PY) bench/model_bench.py
	$(PY) bench/forecast_bench.py

# Grid hotspot forecasters on Toronto 2019 (the protocol of docs/forecast.md); rewrites the "Hotspot forecasting"
# section of bench/RESULTS.md (~10 min on a shared 2-core machine).
bench-forecast: $(RUNTIME_STAMP)
	$(PY) bench/forecast_bench.py

# One-off scale check: 50 million simulated incidents (tens of minutes, ~10 GB of temporary disk).
bench-50m: $(TEST_STAMP)
	$(PY) bench/huge.py

# Re-pin: regenerate constraints.txt from the current environment.
lock: $(TEST_STAMP)
	$(PY) -m pip freeze --exclude-editable | grep -vi '^crimelens' > constraints.txt

clean:
	rm -rf $(VENV) demo crimelens.duckdb .mypy_cache .ruff_cache .import_linter_cache tests/artifacts
