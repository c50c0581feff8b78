# Backprop Lab. The two commands a newcomer needs:
#   make lab    install (once) and open the course in JupyterLab
#   make test   install (once) and run every test
# `make help` lists the rest.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# jupyter refuses to run as root without --allow-root (containers, CI machines).
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: help install lab test lessons labs my-labs clean

help:
	@echo "make lab      install and open the course in JupyterLab (lesson 01)"
	@echo "make test     install and run every test (library, notebooks, nbgrader pipeline)"
	@echo "make lessons  re-execute every lesson in place (after editing one)"
	@echo "make labs     regenerate labs/ from solutions/ with nbgrader (after editing a solution)"
	@echo "make my-labs  copy any lab you have not started into my-labs/ (never overwrites)"
	@echo "make clean    remove the virtual environment and grading leftovers"

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

install: $(STAMP)

my-labs:
	@mkdir -p my-labs
	@for lab in $(notdir $(wildcard labs/lab*)); do \
	  if [ ! -e my-labs/$$lab ]; then cp -r labs/$$lab my-labs/ && echo "my-labs/$$lab: ready for you"; fi; \
	done

lab: $(STAMP) my-labs
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir="$(CURDIR)" lessons/01_forward_pass.ipynb

test: $(STAMP)
	$(BIN)/python -m pytest

lessons: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py lessons/*.ipynb

labs: $(STAMP)
	$(BIN)/nbgrader generate_assignment '*' --force

clean:
	rm -rf $(VENV) .nbgrader submitted autograded feedback grades.csv
