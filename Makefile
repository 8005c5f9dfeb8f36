# The two commands of the quickstart: `make run` (the main job on embedded defaults) and `make test`.
# Both create the virtualenv and install the system packages they need when missing (as root, via apt-get).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMPS := .make-stamps
APT_PACKAGES := ffmpeg opencv-data espeak-ng sox redis-server chromium docker-compose
RUN_OUT ?= release
EXTRAS := airflow,cpu,gpu,test

.PHONY: run test test-fast lint setup system-deps constraints regen-migration bench airflow clean

run: setup
	$(BIN)/talkvid run demo --out $(RUN_OUT)

# The whole suite (what CI runs), after the linter.
test: setup lint
	$(BIN)/python -m pytest

# Unit and catalog tests: under a minute, for the edit-test loop.
test-fast: setup
	$(BIN)/python -m pytest -m "unit or catalog" -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

setup: system-deps $(STAMPS)/venv $(STAMPS)/models

# The multilingual Whisper model (spoken language without configuration), checksum pinned, into $TALKVID_MODEL_DIR.
$(STAMPS)/models: $(STAMPS)/venv
	$(BIN)/talkvid models fetch
	touch $@

# Installs only what is missing; without root or apt-get it says what to install and goes on.
system-deps:
	@missing=""; \
	for pkg in $(APT_PACKAGES); do dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "please install:$$missing"; fi; \
	fi

$(STAMPS)/venv: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	# face-alignment declares opencv-python; the contrib build (BRISQUE) must own the cv2 package.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps face-alignment
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps --force-reinstall opencv-contrib-python-headless
	$(BIN)/python -c "import cv2; cv2.quality.QualityBRISQUE_compute; cv2.CascadeClassifier"
	mkdir -p $(STAMPS) && touch $@

constraints: $(STAMPS)/venv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^talkvid' > constraints.txt

# While the schema is unreleased, the initial migration is regenerated from the models.
regen-migration: setup
	rm -f talkvid_ops/catalog/migrations/versions/0001_*.py
	cd talkvid_ops/catalog && ../../$(BIN)/python -c "import tempfile; from alembic import command; from talkvid_ops.catalog.db import alembic_config; command.revision(alembic_config('sqlite:///' + tempfile.mktemp(suffix='.sqlite')), message='initial catalog', autogenerate=True, rev_id='0001')"

bench: setup
	$(BIN)/python benchmarks/run_all.py

# The Airflow UI with this checkout's DAGs and plugin, reachable from this machine only: the api-server on 127.0.0.1
# and no log servers (Airflow binds those to every interface; talkvid_ops/runners/local_airflow.py says why).
airflow: setup
	AIRFLOW_HOME=$${AIRFLOW_HOME:-$(CURDIR)/airflow-home} AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins AIRFLOW__CORE__LOAD_EXAMPLES=False \
	$(BIN)/python -m talkvid_ops.runners.local_airflow

clean:
	rm -rf $(VENV) $(STAMPS) talkvid-data
