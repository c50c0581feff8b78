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
# jupyter refuses to run as root without --allow-root (containers, CI machines).
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: help install lab test lessons labs my-labs bench mistakes clean torch

help:
	@echo "make lab      install and open the course in JupyterLab (lesson 01)"
	@echo "make test     install and run every test (library, notebooks, nbgrader pipeline)"
	@echo "make lessons  re-execute every lesson in place (after editing one)"
	@echo "make labs     regenerate labs/ from solutions/ with nbgrader (after editing a solution)"
	@echo "make my-labs  copy any lab you have not started into my-labs/ (never overwrites)"
	@echo "make mistakes rewrite docs/mistakes.md: each lab's common mistakes and the message they get"
	@echo "make bench    time training steps against PyTorch (when installed); see docs/performance.md"
	@echo "make torch    install PyTorch (CPU) so the tests that compare with it run instead of skipping"
	@echo "make sandbox  install the autograding sandbox (bubblewrap, as root) and check that it works"
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

# JupyterLab 4 ignores a notebook given on its command line (it opens the Launcher); its
# default_url is the page the browser is sent to, so that is how Lesson 01 opens.
FIRST_LESSON := lessons/01_forward_pass.ipynb

lab: $(STAMP) my-labs
	$(BIN)/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir="$(CURDIR)" \
	  --LabApp.default_url=/lab/tree/$(FIRST_LESSON)

# PyTorch, CPU build, for the tests that compare with it (they skip without it) and `make bench`.
# Pinned: an unpinned `torch` can pull a CUDA build of several GB. Not in requirements.txt.
TORCH_VERSION ?= 2.13.0

torch: $(STAMP)
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)

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

clean:
	rm -rf $(VENV) .nbgrader submitted autograded feedback similarity grades.csv \
	  grades-canvas.csv grades-moodle.csv

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

autograde: check-autograde duedates $(STAMP)  # grade submitted/*/$(LAB), sandboxed; exit status 1 if one failed
	$(NBGRADER) autograde '$(LAB)'

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
