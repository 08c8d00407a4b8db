# Two commands for a newcomer: `make demo` and `make test`. Both start with `make setup`.
PY := .venv/bin/python
PIP := .venv/bin/pip
STAMP := .venv/.installed

.PHONY: setup test test-fast demo clean

setup: $(STAMP)

# torch is pinned to the CPU wheel first; everything else installs with it held fixed by constraints.txt,
# so no package can pull the multi-GB CUDA build. GPU users: see README "GPU install".
$(STAMP): requirements.txt constraints.txt pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt -c constraints.txt
	$(PIP) install -q --no-deps -e .
	touch $(STAMP)

test: setup
	OMP_NUM_THREADS=2 $(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

demo: setup
	bash scripts/demo.sh

clean:
	rm -rf playground/results output
