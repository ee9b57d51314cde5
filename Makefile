# Two commands for everyone: `make lab` (students) and `make test` (maintainers, CI);
# `make instructor` is `make lab` with nbgrader's formgrader, for instructors.
# Both create .venv from nothing (only python3 and make are needed) and reinstall
# only when pyproject.toml changes: the stamp file's name holds its hash.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell $(PYTHON) -c "import hashlib,pathlib;print(hashlib.sha256(pathlib.Path('pyproject.toml').read_bytes()).hexdigest()[:16])")
HOST ?= 127.0.0.1
PORT ?= 8888
SUBMISSIONS ?= submissions
# Threads per process: engines are the parallelism, BLAS must not oversubscribe.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: lab instructor test lint format bench release check-release grade verify-exercises check-sandbox clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --python $(BIN)/python --quiet -e ".[course,cluster,test]"
	@touch $@

# Students: no nbgrader instructor tools (as on Binder). Instructors: the formgrader.
lab: $(STAMP)
	@$(BIN)/python -m course_lib.lab --ip $(HOST) --port $(PORT)

instructor: $(STAMP)
	@$(BIN)/python -m course_lib.lab --instructor --ip $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/ruff check course_lib tests bench
	$(BIN)/ruff format --check course_lib tests bench
	$(BIN)/python -m pytest

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

grade: $(STAMP)
	$(GRADING) grade $(SUBMISSIONS) $(LESSON_ARGS) $(JOB_ARGS)

verify-exercises: $(STAMP)
	$(GRADING) verify-exercises $(LESSON_ARGS) $(JOB_ARGS)

check-sandbox: $(STAMP)
	$(GRADING) check-sandbox

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
