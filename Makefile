# Backprop Lab. The two commands a newcomer needs:
#   make lab    install (once) and open the course in JupyterLab
#   make test   install (once) and run every test
# `make help` lists the rest.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The course's models are small: one BLAS thread is as fast as several on an idle machine and
# several times faster on a busy one (threads wait for each other). Kernels inherit this.
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1
# The same numbers on every x86-64 machine: NumPy's AVX-512 loops and OpenBLAS's AVX-512 kernels
# round differently from their AVX2 ones, and a lesson's chaotic experiment (lesson 11's deep
# networks) then ends elsewhere than its committed output. Both pinned to AVX2 (names another
# machine does not know are ignored). Kernels inherit this; conftest.py and
# tools/execute_notebooks.py set the same for runs without make.
export NPY_DISABLE_CPU_FEATURES ?= X86_V4 AVX512_ICL AVX512_SPR
export OPENBLAS_CORETYPE ?= Haswell
# jupyter refuses to run as root without --allow-root (containers, CI machines).
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: help install lab test lessons labs my-labs bench bench-grading mistakes clean torch wheel

help:
	@echo "make lab      install and open the course in JupyterLab (lesson 01)"
	@echo "make test     install and run every test (library, notebooks, nbgrader pipeline)"
	@echo "make lessons  re-execute every lesson in place (after editing one)"
	@echo "make labs     regenerate labs/ from solutions/ with nbgrader (after editing a solution)"
	@echo "make my-labs  copy any lab you have not started into my-labs/ (never overwrites)"
	@echo "make mistakes rewrite docs/mistakes.md: each lab's common mistakes and the message they get"
	@echo "make bench    time training steps against PyTorch (when installed); see docs/performance.md"
	@echo "make autograde LAB=lab01_forward_pass [JOBS=N] [FORCE=1]"
	@echo "              grade new or changed submissions, N at once (default: every core);"
	@echo "              FORCE=1 grades every one again (docs/instructors.md, section 3)"
	@echo "make bench-grading [STUDENTS=200]  time autograding a synthetic class, 1 and 2 at once"
	@echo "make torch    install PyTorch (CPU) so the tests that compare with it run instead of skipping"
	@echo "make wheel    build the library alone, dist/backprop_lab-<version>-py3-none-any.whl (pip install it anywhere)"
	@echo "make sandbox  install the autograding sandbox (bubblewrap, as root) and check that it works"
	@echo "make hub     (root) a class on JupyterHub: PORT=8000 ROSTER=roster.csv (docs/instructors.md)"
	@echo "make hub-stop stop the class hub; make hub-env builds its course environment only"
	@echo "make clean    remove the virtual environment and grading leftovers"
	@echo "Instructors (docs/instructors.md): make release|autograde|feedback|similarity|audit LAB=<lab>,"
	@echo "  make regrade LAB=<lab> STUDENT=<id>, make students ROSTER=students.csv,"
	@echo "  make duedates (duedates.csv -> gradebook and late penalties),"
	@echo "  make grades FORMAT=csv|canvas|moodle (grades.csv, grades-canvas.csv, ...-moodle.csv),"
	@echo "  make similarity LAB=<lab> (similarity/<lab>.html: evidence for a human, never a verdict)"

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

# A learner's JupyterLab, configured by tools/jupyter/learner/ (on JUPYTER_CONFIG_PATH): nbgrader's
# instructor screens off (labconfig/page_config.json, jupyter_server_config.json), Validate kept,
# and the browser sent to the workspace `backprop-lab`: Lesson 01 open, the file browser at the
# root, beside my-labs/. The workspace starts from the committed template the first time and
# keeps the learner's layout after that, in .jupyter-workspaces/ (git-ignored).
LEARNER_JUPYTER := $(CURDIR)/tools/jupyter/learner
WORKSPACES      := $(CURDIR)/.jupyter-workspaces

lab: $(STAMP) my-labs
	@test -d "$(WORKSPACES)" || $(BIN)/jupyter lab workspaces import \
	  --LabWorkspaceImportApp.workspaces_dir="$(WORKSPACES)" $(LEARNER_JUPYTER)/backprop-lab.jupyterlab-workspace
	JUPYTER_CONFIG_PATH="$(LEARNER_JUPYTER)$${JUPYTER_CONFIG_PATH:+:$$JUPYTER_CONFIG_PATH}" $(BIN)/jupyter lab $(ROOT_FLAG) \
	  --ServerApp.root_dir="$(CURDIR)" --LabApp.workspaces_dir="$(WORKSPACES)"

# PyTorch, CPU build, for the tests that compare with it (they skip without it) and `make bench`.
# Pinned: an unpinned `torch` can pull a CUDA build of several GB. Not in requirements.txt.
TORCH_VERSION ?= 2.13.0

torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)

# The library alone, as a wheel (lib/backprop and nothing else of the course: no lessons, labs,
# solutions, tests or grading), for a student environment or any learner: `pip install` it and a
# released lab runs. setuptools builds in ./build, which is emptied first so that no module
# deleted from lib/ survives in the wheel. DIST is where the wheel goes.
DIST ?= dist

wheel: $(STAMP)
	rm -rf build
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir "$(DIST)" .

test: $(STAMP)
	$(BIN)/python -m pytest

lessons: $(STAMP)
	$(BIN)/python tools/execute_notebooks.py lessons/*.ipynb

labs: $(STAMP)
	$(BIN)/nbgrader generate_assignment '*' --force

mistakes: $(STAMP)
	$(BIN)/python tools/write_mistakes_doc.py

bench: $(STAMP)
	$(BIN)/python bench/bench_models.py --threads 1
	$(BIN)/python bench/bench_rnn.py --threads 1
	$(BIN)/python bench/bench_norm.py
	$(BIN)/python bench/bench_transformer.py

bench-grading: $(STAMP)  # autograde a synthetic class of lab 01 with 1 and 2 workers
	$(BIN)/python bench/bench_autograde.py $(if $(STUDENTS),--students $(STUDENTS))

clean:
	rm -rf $(VENV) .nbgrader submitted autograded feedback similarity grades.csv \
	  grades-canvas.csv grades-moodle.csv build dist

# ---------------------------------------------------------------------------------------------
# Instructor: thin wrappers around nbgrader's own commands (docs/instructors.md explains the
# whole cycle). LAB is a lab folder name, e.g. `make autograde LAB=lab01_forward_pass`, or '*'.
NBGRADER := $(BIN)/nbgrader

.PHONY: release autograde feedback grades regrade audit sandbox lab-given student-given \
	similarity duedates students
# Each target first checks its input (tools/course_cli.py): a missing lab, an unknown student,
# an empty submitted/ ... is one line saying what to do, not a traceback.
COURSE := $(BIN)/python tools/course_cli.py
FORMAT ?= csv
GRADES_FILE := $(if $(filter csv,$(FORMAT)),grades.csv,grades-$(FORMAT).csv)
EXPORTER := $(strip $(if $(filter canvas,$(FORMAT)),CanvasExport,\
	$(if $(filter moodle,$(FORMAT)),MoodleExport,CsvExport)))

check-%: $(STAMP)
	@$(COURSE) check $* --lab='$(LAB)' --student='$(STUDENT)' --format='$(FORMAT)'

sandbox:  # install the autograding sandbox (Debian's bubblewrap; needs root) and check it
	@command -v bwrap >/dev/null || apt-get install -y bubblewrap || \
	  { echo "Install bubblewrap as root: apt-get install bubblewrap"; exit 2; }
	@$(BIN)/python -c "import sys; sys.path.insert(0, '.'); from grading.sandbox import sandbox_problem as p; print(p() or 'sandbox ready: autograde runs every kernel in bubblewrap'); sys.exit(bool(p()))"

release: check-release $(STAMP)  # the student version: solutions/$(LAB) -> labs/$(LAB)
	$(NBGRADER) generate_assignment '$(LAB)' --force

# JOBS submissions at once (default: every core), each in its own sandbox; only those new or
# changed since last graded unless FORCE=1; exit status 1 if one failed (grading/parallel.py).
autograde: check-autograde duedates $(STAMP)
	$(BIN)/python -m grading.parallel '$(LAB)' $(if $(JOBS),--jobs $(JOBS)) $(if $(FORCE),--force)

feedback: check-feedback $(STAMP)  # feedback/<student>/$(LAB)/*.html from autograded/
	$(NBGRADER) generate_feedback '$(LAB)'

grades: check-grades duedates $(STAMP)  # FORMAT=csv|canvas|moodle (grading/export.py)
	$(NBGRADER) export --exporter=grading.export.$(EXPORTER) --to $(GRADES_FILE)

regrade: check-regrade $(STAMP)  # make regrade LAB=lab01_forward_pass STUDENT=ada
	$(NBGRADER) autograde '$(LAB)' --student='$(STUDENT)' --force
	$(NBGRADER) generate_feedback '$(LAB)' --student='$(STUDENT)' --force

audit: check-audit $(STAMP)  # code in submissions that reaches outside the answers (read it by hand)
	$(BIN)/python tools/audit_submissions.py '$(or $(LAB),*)'

duedates: $(STAMP)  # duedates.csv -> the gradebook; late penalties of graded work recomputed
	@$(COURSE) duedates duedates.csv

students: $(STAMP)  # make students ROSTER=students.csv: checked, then nbgrader db student import
	@$(COURSE) roster '$(or $(ROSTER),students.csv)'

similarity: check-similarity $(STAMP)  # similarity/$(LAB).html: the most similar pairs of answers
	$(BIN)/python tools/similarity.py '$(LAB)'

lab-given:
	@test -n "$(LAB)" || { echo "Name the lab: LAB=lab01_forward_pass (or LAB='*')"; exit 2; }

student-given:
	@test -n "$(STUDENT)" || { echo "Name the student: STUDENT=<id in submitted/>"; exit 2; }

# ---------------------------------------------------------------------------------------------
# A class on JupyterHub, as root (docs/instructors.md, "A class on JupyterHub"): hub/setup.py,
# run by Debian's Python, installs the course environment in /opt/backprop-lab and the class in
# /srv/backprop-lab; accounts come from ROSTER (columns as hub/roster.example.csv).
PORT   ?= 8000
ROSTER ?= roster.csv
HUB_SETUP := /usr/bin/python3 hub/setup.py

.PHONY: hub hub-env hub-stop

hub-env:  # the system-wide course environment and configurable-http-proxy (once per machine)
	$(HUB_SETUP) env

hub:  # accounts, course, exchange, formgrader service; (re)starts the hub on PORT
	$(HUB_SETUP) up --port $(PORT) --roster $(ROSTER)

hub-stop:
	$(HUB_SETUP) stop
