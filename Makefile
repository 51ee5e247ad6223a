# Two commands do all the set-up on a fresh machine:
#   make demo   - a full signed duplicate check against the built-in IBR simulator
#   make test   - the core test suite and static checks of the addon (no Odoo needed)
# and one runs the addon in Odoo, with demo data, beside the simulator:
#   make odoo-demo ODOO=<an Odoo 19 source tree> [RESET=1] [ODOO_PORT=8069] [SIM_PORT=8000]
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

.PHONY: demo test lint bench readme odoo-demo
demo: $(BIN)/.installed
	$(BIN)/python -m dci check --id NID:1000000001 --id NID:1000000002 --id NID:1000000003

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/pylint --rcfile=.pylintrc --score=n .
	$(BIN)/python -m pytest core_tests

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --rcfile=.pylintrc .

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/run.py

# README.rst and static/description/index.html from readme/*.md
readme: $(BIN)/.installed
	$(BIN)/python tools/gen_readme.py

# The addon in a running Odoo with its demo data, beside the simulator (tools/odoo_demo.py)
ODOO_PORT ?= 8069
SIM_PORT ?= 8000
DEMO_DB ?= spp_ibr_demo
odoo-demo:
	@test -n "$(ODOO)" || { echo "usage: make odoo-demo ODOO=<path to an Odoo 19 source tree> [RESET=1] [ODOO_PORT=8069] [SIM_PORT=8000] [DEMO_DB=spp_ibr_demo]"; exit 2; }
	$(PYTHON) tools/odoo_demo.py --odoo "$(ODOO)" --db "$(DEMO_DB)" --port $(ODOO_PORT) --sim-port $(SIM_PORT) $(if $(RESET),--reset)
