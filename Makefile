# The two quick-start commands (README): `make run` and `make test`.
# Both create/update the virtualenv in .venv and are fast when nothing changed.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test bench setup setup-dev
run: setup
	$(PY) -m core demo --if-missing
	LATTICE_DEMO=$${LATTICE_DEMO-1} $(VENV)/bin/streamlit run app.py --server.port $(PORT)

test: setup-dev
	bash scripts/ensure-system-packages.sh
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	$(PY) -m core bench

setup: $(VENV)/.runtime-installed
setup-dev: $(VENV)/.dev-installed

$(VENV)/.runtime-installed: requirements.txt pyproject.toml
	bash scripts/ensure-venv.sh $(VENV) requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt pyproject.toml
	bash scripts/ensure-venv.sh $(VENV) requirements-dev.txt
	touch $(VENV)/.runtime-installed $@
