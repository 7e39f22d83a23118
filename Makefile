# readiness: the two quick-start commands, and what they need.
#   make readiness   set up, then run the main job on the built-in local lab
#   make test        set up, then run every test (unit, the broker's layers, end to end)
# Both are idempotent: a second run installs nothing new.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Debian packages the control node and the local lab need: the database server the
# broker's tests run against, OpenSSH for the lab hosts, iproute2 for their namespaces,
# shellcheck for `make lint` (the remote scripts), tcpdump for the RST capture of each
# layer's evidence window (orchestrator/capture.py), iptables for injecting resets,
# chromium for the real-browser tests of the report (tests/browser.py drives it over the
# DevTools pipe; fonts-dejavu-core: a known font for its width checks), git for the
# project's commit in the run record.
DEBS := mariadb-server mariadb-client openssh-server openssh-client iproute2 procps \
        python3 python3-venv python3-pip ca-certificates shellcheck tcpdump iptables \
        chromium fonts-dejavu-core git
PY_REQS := pyproject.toml sut/broker/requirements.txt sut/broker/integration/requirements.txt

.PHONY: help setup debs venv readiness test lint unit clean

help:
	@echo "make readiness  - set up, then run the readiness job on the local lab"
	@echo "make test       - set up, then run every test (unit, application layers, end to end)"
	@echo "make setup      - install Debian packages (root) and the virtualenv $(VENV)"
	@echo "make lint       - ruff, mypy, and bash -n + shellcheck on the rendered remote scripts"

setup: debs venv

debs:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make setup: these Debian packages are missing:$$missing. Run 'make setup' as root, or install them with apt-get, then try again." >&2; \
	    exit 2; \
	  fi; \
	  echo "make setup: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: $(PY_REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]' -r sut/broker/requirements.txt -r sut/broker/integration/requirements.txt
	touch $@

# The main job on the built-in local lab: all-on-one, then distributed. Both always run
# (the second is not skipped when the first is not ready); the exit code is the worst.
readiness: setup
	@rc=0; \
	$(VENV)/bin/invoke readiness --inventory=single || rc=$$?; \
	$(VENV)/bin/invoke readiness --inventory=cluster || { c=$$?; [ $$c -gt $$rc ] && rc=$$c; }; \
	if [ -f reports/summary.md ]; then echo; cat reports/summary.md; echo; fi; \
	echo "readiness: run records in reports/runs/, side by side in reports/index.html"; \
	exit $$rc

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m orchestrator.scripts
	$(PY) -m orchestrator.schema --check

unit: venv
	$(PY) -m pytest tests/unit -q

test: setup lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
