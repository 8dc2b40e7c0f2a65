# Task runner of the hpc-gateway bundle. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
# abspath: VENV may be relative (to this directory) or absolute.
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
SCENARIO ?= default
# Scenarios `make molecule` (and so `make test`) runs, in order.
SCENARIOS ?= default
# Image the containers run; empty = build/reuse the local Debian image.
HPCGW_BASE_IMAGE ?=
export HPCGW_BASE_IMAGE

.PHONY: help toolchain engine image lint unit syntax test test-quick molecule \
        molecule-converge molecule-verify molecule-destroy demo demo-down demo-status bench bench-spawn clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 22

$(VENV)/.installed: requirements-dev.txt requirements.yml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/ansible-galaxy collection install -r requirements.yml
	touch $@

toolchain: $(VENV)/.installed  ## controller virtualenv with pinned Ansible, Molecule, linters (seconds when current)

engine:  ## make sure a Docker engine answers (installs/starts docker.io as root on Debian)
	$(PYTHON) tools/docker_engine.py

image: engine  ## build or reuse the local Debian base image (prints its tag)
	$(PYTHON) tools/base_image.py

lint: toolchain  ## yamllint + ansible-lint (production profile)
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint --offline -q

unit: toolchain  ## Python unit tests (filters, tools, templates)
	$(BIN)/pytest -q tests/unit

syntax: toolchain  ## ansible-playbook --syntax-check of site.yml
	$(BIN)/ansible-playbook -i inventories/example/hosts.yml --syntax-check site.yml

test-quick: lint unit syntax  ## inner loop: lint, unit tests, syntax (no containers)

# Each scenario's output is also kept in artifacts/molecule/<scenario>.log and its
# verifier's JUnit report in <scenario>.xml; on failure the last lines say what failed.
molecule: toolchain image  ## every Molecule scenario of $(SCENARIOS) (create..verify..destroy each)
	export HPCGW_BASE_IMAGE="$$($(PYTHON) tools/base_image.py)"; \
	mkdir -p artifacts/molecule; \
	for scenario in $(SCENARIOS); do \
	  log=artifacts/molecule/$$scenario.log; report=$(CURDIR)/artifacts/molecule/$$scenario.xml; \
	  rm -f $$log $$report; \
	  echo "=== molecule test -s $$scenario ($$(date +%T))"; \
	  if ! PYTEST_ADDOPTS="--junitxml=$$report" $(BIN)/molecule test -s $$scenario 2>&1 | tee $$log; then \
	    $(PYTHON) tools/failure_digest.py $$scenario $$log $$report; exit 1; \
	  fi; \
	done

molecule-converge: toolchain image  ## keep a scenario up for debugging (create + converge)
	HPCGW_BASE_IMAGE="$$($(PYTHON) tools/base_image.py)" $(BIN)/molecule converge -s $(SCENARIO)

molecule-verify: toolchain  ## verify a scenario left up by molecule-converge
	HPCGW_BASE_IMAGE="$$($(PYTHON) tools/base_image.py)" $(BIN)/molecule verify -s $(SCENARIO)

molecule-destroy: toolchain  ## remove a scenario's containers, networks and volumes
	HPCGW_BASE_IMAGE="$$($(PYTHON) tools/base_image.py --print-tag)" $(BIN)/molecule destroy -s $(SCENARIO)

# The quick tier (CPU-bound lint and unit tests) runs beside Molecule, at the
# lowest CPU priority: tools/idle_priority.py puts it in a CPU group of its own
# with the smallest weight (nice alone only ranks it against the host's own
# processes, not against the containers' cgroup), so Molecule's converges and
# timed tests keep the cores they need and the quick tier takes what they
# leave (verify mostly waits on schedulers and timers). Its output goes to
# artifacts/test-quick.log, summed up (and its tail printed when it failed)
# once Molecule ends; either failing fails `make test`.
test: toolchain  ## THE test command: lint + unit + full Molecule; non-zero on any failure
	@mkdir -p artifacts; \
	echo "=== make test-quick beside Molecule ($$(date +%T)), output in artifacts/test-quick.log"; \
	{ quick_rc=0; $(PYTHON) tools/idle_priority.py $(MAKE) --no-print-directory test-quick > artifacts/test-quick.log 2>&1 || quick_rc=$$?; \
	  echo "$$quick_rc" > artifacts/test-quick.rc; } & quick=$$!; \
	molecule_rc=0; $(MAKE) --no-print-directory molecule || molecule_rc=$$?; \
	wait $$quick || true; quick_rc=$$(cat artifacts/test-quick.rc); \
	echo "=== make test-quick: exit $$quick_rc; make molecule: exit $$molecule_rc ($$(date +%T))"; \
	grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)' artifacts/test-quick.log || true; \
	if [ "$$quick_rc" != 0 ]; then tail -n 60 artifacts/test-quick.log; fi; \
	[ "$$quick_rc" = 0 ] && [ "$$molecule_rc" = 0 ]

demo:  ## THE demo: dockerized SLURM cluster + gateway on https://localhost:$${HPCGW_DEMO_PORT:-8443}/ (re-run: changes nothing)
	$(PYTHON) tools/demo.py up

demo-down:  ## remove everything the demo created (containers, networks, volumes; images stay)
	$(PYTHON) tools/demo.py down

demo-status:  ## does the demo answer?
	$(PYTHON) tools/demo.py status

bench: toolchain  ## benchmarks on the running demo: spawn p50/p95 with its floors, proxy hop, login, scheduler calls, memory (artifacts/bench/)
	$(PYTHON) tools/bench.py

bench-spawn:  ## spawn benchmark against the running demo: click-to-ready median of ROUNDS (default 5) preset spawns
	docker exec hpcgw-ctl python3 /usr/local/bin/spawnclient.py bench https://hpcgw-gw/jupyter alice alice-test-pw \
	  $${ROUNDS:-5} '{"profile": "debug-1c"}'

clean: molecule-destroy  ## remove test leftovers (containers, networks, volumes); keeps images
