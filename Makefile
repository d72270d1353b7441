# recpoison — the two Quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test test-fast bench install dev clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(PIP) install -c constraints.txt -e '.[dev,ray]'
	touch $@

install: $(VENV)/.installed
dev: $(VENV)/.dev-installed

demo: $(VENV)/.installed
	$(VENV)/bin/recpoison demo

test: $(VENV)/.dev-installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 -q

test-fast: $(VENV)/.dev-installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 -q -m "not slow"

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_mf.py

clean:
	rm -rf $(VENV) runs .pytest_cache
