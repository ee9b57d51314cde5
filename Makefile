# Two commands for everyone: `make lab` (students) and `make test` (maintainers, CI);
# `make instructor` is `make lab` with nbgrader's formgrader, for instructors.
# Both create .venv from nothing (only python3 and make are needed) and reinstall
# only when pyproject.toml changes: the stamp file's name holds its hash.

PYTHON ?= python3
# The Pythons the course claims: requires-python's lower bound and the newest
# "Programming Language :: Python :: 3.N" classifier, both read from pyproject.toml.
PYTHON_OLDEST := $(shell sed -n 's/^requires-python = ">=\([0-9.]*\)".*/\1/p' pyproject.toml)
PYTHON_NEWEST := $(shell sed -n 's/.*"Programming Language :: Python :: \(3\.[0-9]*\)".*/\1/p' pyproject.toml | sort -t. -k2 -n | tail -n 1)
# Every extra of pyproject.toml, comma-separated: every venv gets all of them.
EXTRAS := $(shell sed -n '/^\[project.optional-dependencies\]/,/^\[/s/^\([A-Za-z0-9_-]*\) = \[.*/\1/p' pyproject.toml | paste -sd, -)
# Which versions of the dependencies, each set in its own venv:
#   DEPS=default  .venv         the newest pyproject.toml allows, when the venv is made
#   DEPS=lowest   .venv-lowest  the lower bounds of pyproject.toml (uv's lowest-direct)
#   DEPS=newest   .venv-newest  the newest releases, upgraded at every install
DEPS ?= default
ifeq ($(DEPS),default)
VENV := .venv
RESOLUTION :=
else ifeq ($(DEPS),lowest)
VENV := .venv-lowest
RESOLUTION := --resolution lowest-direct
else ifeq ($(DEPS),newest)
VENV := .venv-newest
RESOLUTION := --resolution highest --upgrade
else
$(error DEPS=$(DEPS): must be default, lowest or newest)
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,pathlib;print(hashlib.sha256(pathlib.Path('pyproject.toml').read_bytes()).hexdigest()[:16])")
# Stops at once, in one sentence, when the interpreter $(1) is older than the course needs.
check_python = $(1) -c 'import sys; found = "%d.%d" % sys.version_info[:2]; sys.exit(0 if sys.version_info[:2] >= tuple(map(int, "$(PYTHON_OLDEST)".split("."))) else "make: $(1) is Python " + found + ", but this course needs Python $(PYTHON_OLDEST) or newer$(2).")'
HOST ?= 127.0.0.1
PORT ?= 8888
SUBMISSIONS ?= submissions
# Threads per process: engines are the parallelism, BLAS must not oversubscribe.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: hub hub-clean report similarity lab instructor test test-lowest test-newest check-python lint format bench release check-release grade verify-exercises check-sandbox clean

$(STAMP): pyproject.toml | check-python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet $(RESOLUTION) -e ".[$(EXTRAS)]"
	@touch $@

# Before anything is installed: the venv's Python if there is a venv, else $(PYTHON).
check-python:
	@if [ -x $(BIN)/python ]; then \
	    $(call check_python,$(BIN)/python,: remove $(VENV) and run make again); \
	else \
	    $(call check_python,$(PYTHON),: run make with PYTHON=python$(PYTHON_OLDEST) or newer); \
	fi

# Students: no nbgrader instructor tools (as on Binder). Instructors: the formgrader.
lab: $(STAMP)
	@$(BIN)/python -m course_lib.lab --ip $(HOST) --port $(PORT)

instructor: $(STAMP)
	@$(BIN)/python -m course_lib.lab --instructor --ip $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check course_lib tests bench
	$(BIN)/ruff format --check course_lib tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# `make test` from nothing on the lowest versions pyproject.toml allows, on the oldest
# Python the course claims, and on the newest releases on the newest Python.
# LOWEST_PYTHON / NEWEST_PYTHON pick other interpreters, PYTEST_ARGS some tests only.
LOWEST_PYTHON ?= python$(PYTHON_OLDEST)
NEWEST_PYTHON ?= python$(PYTHON_NEWEST)

test-lowest:
	rm -rf .venv-lowest
	$(MAKE) test DEPS=lowest PYTHON=$(LOWEST_PYTHON)

test-newest:
	rm -rf .venv-newest
	$(MAKE) test DEPS=newest PYTHON=$(NEWEST_PYTHON)

lint: $(STAMP)
	$(BIN)/ruff check course_lib tests bench
	$(BIN)/ruff format --check course_lib tests bench

format: $(STAMP)
	$(BIN)/ruff format course_lib tests bench
	$(BIN)/ruff check --fix course_lib tests bench

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# Grading (nbgrader). COURSE is the course root, LESSONS limits to some lessons,
# JOBS sets how many submissions grade at once (default: CPUs, capped by memory).
# Every graded notebook runs in a bubblewrap sandbox; SANDBOX=off grades without
# one (every row of grades.csv then says so). `make check-sandbox` tests a host.
COURSE ?= .
SANDBOX ?= on
GRADING := $(BIN)/python -m course_lib.grading --root $(COURSE)
LESSON_ARGS = $(if $(LESSONS),--lessons $(LESSONS))
JOB_ARGS = $(if $(JOBS),--jobs $(JOBS)) --sandbox $(SANDBOX)

release: $(STAMP)
	$(GRADING) release $(LESSON_ARGS) $(if $(PRUNE),--prune)

check-release: $(STAMP)
	$(GRADING) check-release $(LESSON_ARGS)

# ON=slurm grades every (student, lesson) as an element of one Slurm job array
# (docs_big_class.md); SHARED, PARTITION, ACCOUNT, TIME, MEM, else nbgrader_config.py.
ON ?= local
SLURM_ARGS = $(foreach v,SHARED PARTITION ACCOUNT TIME MEM,$(if $($(v)),--$(shell echo $(v) | tr A-Z a-z) $($(v))))

grade: $(STAMP)
	$(GRADING) grade $(SUBMISSIONS) $(LESSON_ARGS) $(JOB_ARGS) --on $(ON) $(SLURM_ARGS)

verify-exercises: $(STAMP)
	$(GRADING) verify-exercises $(LESSON_ARGS) $(JOB_ARGS)

check-sandbox: $(STAMP)
	$(GRADING) check-sandbox

# grades.csv and the table from the gradebook, after grading by hand in the formgrader.
report: $(STAMP)
	$(GRADING) report

# The class similarity report: similarity.csv and similarity.html in COURSE (no score changes).
THRESHOLD ?= 0.8
similarity: $(STAMP)
	$(GRADING) similarity $(SUBMISSIONS) $(LESSON_ARGS) --threshold $(THRESHOLD)

clean:
	rm -rf .venv .venv-lowest .venv-newest .pytest_cache .ruff_cache

# The course on a real multi-user JupyterHub on 127.0.0.1, for an instructor to try
# (README, "On a JupyterHub"): as root, it makes the users' environment from HUB_PYTHON
# (every user must be able to run it: not one in a private home), configurable-http-proxy
# with npm, the exchange, one instructor and HUB_STUDENTS students per course of
# HUB_COURSES, and runs the hub until Ctrl-C. `make hub-clean` deletes its users and HUB_DIR.
HUB_DIR ?= /opt/course-hub
HUB_PYTHON ?= /usr/bin/python3
HUB_PORT ?= 8000
HUB_COURSES ?= dmsa
HUB_STUDENTS ?= 2
HUB_PREFIX ?=

hub: $(STAMP)
	@$(BIN)/python -m course_lib.hub --dir $(HUB_DIR) --python $(HUB_PYTHON) --port $(HUB_PORT) \
	    --courses $(HUB_COURSES) --students $(HUB_STUDENTS) $(if $(HUB_PREFIX),--prefix $(HUB_PREFIX))

hub-clean: $(STAMP)
	@$(BIN)/python -m course_lib.hub --dir $(HUB_DIR) --remove
