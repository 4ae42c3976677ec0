# The two quick-start commands (README): `make run` and `make test`.
# Both create/update the virtualenv in .venv and are fast when nothing changed.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Listen on this machine only unless asked (demo mode publishes its passwords):
# `make run HOST=0.0.0.0` or LATTICE_BIND=0.0.0.0 for every interface.
HOST ?= $(or $(LATTICE_BIND),127.0.0.1)

.PHONY: run serve test bench setup setup-dev
run: setup
	$(PY) -m core demo --if-missing
	@echo "Gem Lattice Workbench on http://$(HOST):$(PORT) ($(if $(filter 127.% localhost ::1,$(HOST)),this machine only,reachable from other machines)); demo mode unless LATTICE_DEMO=0"
	LATTICE_DEMO=$${LATTICE_DEMO-1} $(VENV)/bin/streamlit run app.py --server.port $(PORT) --server.address $(HOST)

# The REST API (OpenAPI at /docs), with the same embedded defaults as `run`.
API_PORT ?= 8000
serve: setup
	$(PY) -m core demo --if-missing
	@echo "Gem Lattice Workbench API on http://$(HOST):$(API_PORT) (docs at /docs; $(if $(filter 127.% localhost ::1,$(HOST)),this machine only,reachable from other machines)); demo mode unless LATTICE_DEMO=0"
	LATTICE_DEMO=$${LATTICE_DEMO-1} $(PY) -m core serve --host $(HOST) --port $(API_PORT)

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
