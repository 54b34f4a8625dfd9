# gr00t-parity workbench. `make` alone (or `make help`) lists the targets, from the `## ` line above each,
# and the report knobs, from groot_lib/core/settings.py.
# Envs are described by environment-*.yml; groot_lib/workbench/envs.py turns them into
# $(ENVS)/<name> and rebuilds one only when its YAML (or GR00T_SRC) changed.

SHELL := /bin/bash
ENVS ?= .envs
GR00T_SRC ?=
# Report knobs: each groot_lib/core/settings.py Knob with a make variable (`make help` lists them, with their
# defaults and help); set one on the command line (make report SEED=3) or in your shell. REPORT_ARGS below
# forwards them all, read from the knob table: a new knob needs no edit here. Every value is validated before any
# kernel starts (bad values exit 2 within ~1 s).
# Where reports and the content-addressed artifact store go (--out-root, --artifacts-root); empty: reports/, build/artifacts
REPORTS_DIR ?=
STORE_DIR ?=
# HF_HOME counts only when given on the command line (make report HF_HOME=...): an HF_HOME in your shell still
# reaches the kernels, but never replaces the tiny default's isolated cache (its knob says make_from_shell=False).
HF_HOME_ARG := $(if $(filter command line,$(origin HF_HOME)),$(HF_HOME))

# Absolute interpreters (the pyenv shims need PYENV_VERSION, so bypass them).
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
find_py = $(or $(shell ls -d $(PYENV_ROOT)/versions/$(1).*/bin/python$(1) 2>/dev/null | sort -V | tail -n1),$(shell command -v python$(1) 2>/dev/null))
PY310 ?= $(call find_py,3.10)
PY312 ?= $(call find_py,3.12)
PY310 := $(PY310)
PY312 := $(PY312)

BOOT  := $(ENVS)/bootstrap
TOOLS := $(ENVS)/tools/bin/python
ENVBUILD := $(BOOT)/bin/python -m groot_lib.workbench.envs build
STAMP := .groot-env.json
export JUPYTER_PATH := $(CURDIR)

# MAKE:--flag:any|cmdline for every knob (groot_lib/workbench/makehelp.py --flags), read only when a recipe needs it
KNOB_FLAGS = $(shell PYTHONPATH=$(CURDIR) $(or $(PY312),python3) -m groot_lib.workbench.makehelp --flags)
knob_part = $(word $(2),$(subst :, ,$(1)))
knob_given = $(if $(filter cmdline,$(call knob_part,$(1),3)),$(filter command line,$(origin $(call knob_part,$(1),1))),$($(call knob_part,$(1),1)))
REPORT_ARGS = $(foreach k,$(KNOB_FLAGS),$(if $(call knob_given,$(k)),$(call knob_part,$(k),2) '$($(call knob_part,$(k),1))')) \
  $(if $(REPORTS_DIR),--out-root '$(REPORTS_DIR)') $(if $(STORE_DIR),--artifacts-root '$(STORE_DIR)')

.PHONY: help setup kernels doctor test report lab browser record-references clean-artifacts clean-reports compare-reports bisect matrix attach-checkpoint export-upstream record-upstream-dumps clean FORCE
.DEFAULT_GOAL := help

## this list (the default goal; it builds nothing)
help:
	@PYTHONPATH=$(CURDIR) $(or $(PY312),python3) -m groot_lib.workbench.makehelp

## build the three envs (incremental); GR00T_SRC=/path/to/Isaac-GR00T adds gr00t (remembered; =none drops it)
setup: $(ENVS)/tools/$(STAMP) $(ENVS)/original/$(STAMP) $(ENVS)/lerobot/$(STAMP)

# uv + pyyaml in a tiny venv; everything else is built with them.
$(BOOT)/bin/uv:
	@test -n "$(PY312)" || { echo "error: no Python 3.12 found (pyenv or PATH); set PY312=/abs/python3.12" >&2; exit 1; }
	$(PY312) -m venv $(BOOT)
	$(BOOT)/bin/python -m pip install -q uv pyyaml

# Rewritten only when GR00T_SRC changes, so the original env notices it.
# Left empty, the checkout recorded in the env's stamp is kept; GR00T_SRC=none drops it.
$(ENVS)/.gr00t-src: FORCE
	@mkdir -p $(ENVS)
	@if [ -n "$(GR00T_SRC)" ]; then echo "$(GR00T_SRC)" | cmp -s - $@ || echo "$(GR00T_SRC)" > $@; \
	 elif [ ! -f $@ ]; then : > $@; fi

# envs.py is a prerequisite: a change to how envs are built (e.g. compiling bytecode) reaches existing envs.
$(ENVS)/tools/$(STAMP): environment-tools.yml groot_lib/workbench/envs.py $(BOOT)/bin/uv
	$(ENVBUILD) $< $(ENVS)/tools $(if $(PY312),--python $(PY312))

$(ENVS)/lerobot/$(STAMP): environment-lerobot.yml groot_lib/workbench/envs.py $(BOOT)/bin/uv
	$(ENVBUILD) $< $(ENVS)/lerobot $(if $(PY312),--python $(PY312))

$(ENVS)/original/$(STAMP): environment-original.yml $(ENVS)/.gr00t-src groot_lib/workbench/envs.py $(BOOT)/bin/uv
	$(ENVBUILD) $< $(ENVS)/original $(if $(PY310),--python $(PY310)) \
	  $(if $(GR00T_SRC),--gr00t-src '$(GR00T_SRC)')

## write the two Jupyter kernelspecs (nothing goes to your global Jupyter config)
kernels: setup
	@$(TOOLS) -m groot_lib.workbench.kernels install --envs $(ENVS)

## each kernel's versions, where gr00t comes from, and the HF cache a report uses (takes CKPT= and HF_HOME=)
doctor: kernels
	@$(TOOLS) -m groot_lib.workbench.doctor $(if $(CKPT),--checkpoint '$(CKPT)') $(if $(HF_HOME_ARG),--hf-home '$(HF_HOME_ARG)')

## the test suite
test: kernels browser
	$(TOOLS) -m pytest -q tests

# Debian's chromium, for the test that renders the report pages headless; installed once when missing (as root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "error: the page-rendering test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; }

# make exits 2 on any failure (FAIL or error); ./gr00t-parity report ... keeps the workflow's own 0/1/2/130.
## run both implementations, write reports/<UTC>/index.html (knobs below; REPORTS_DIR= and STORE_DIR= move
## the reports folder and the artifact store)
report: kernels
	@$(TOOLS) -m groot_lib.workbench.workflow report $(REPORT_ARGS)

# JupyterLab with both kernels; Jupyter's config, settings and workspaces stay under build/jupyter, so
# nothing is written to your global Jupyter config. LAB_ARGS=--no-browser etc.
LAB_ARGS ?=
## JupyterLab with both kernels (LAB_ARGS=--no-browser ...)
lab: kernels
	@JUPYTER_CONFIG_DIR=$(CURDIR)/build/jupyter/config JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/build/jupyter/settings \
	  JUPYTERLAB_WORKSPACES_DIR=$(CURDIR)/build/jupyter/workspaces \
	  $(ENVS)/tools/bin/jupyter lab --notebook-dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Re-record the committed original outputs for the tiny default and the variants checkpoint (needs GR00T_SRC once).
## re-record the committed outputs of the original on the tiny checkpoints (needs gr00t)
record-references: kernels
	$(TOOLS) -m groot_lib.workbench.workflow record --sweep 2 $(if $(STORE_DIR),--artifacts-root '$(STORE_DIR)')
	$(TOOLS) -m groot_lib.workbench.workflow record --checkpoint checkpoints/tiny/gr00t-n1.7-tiny-variants --variants fp32-sdpa --stages off \
	  $(if $(STORE_DIR),--artifacts-root '$(STORE_DIR)')
	$(TOOLS) -m groot_lib.workbench.workflow record-training

# Per-phase wall time + peak RSS of `make report` (tiny + a generated scaled-up checkpoint) against
# a bare script + pytest flow: build/bench/results-<UTC>.md/.json. BENCH_ARGS=--skip-scaled etc.
.PHONY: bench gpu-check-prepare real-size-checkpoint
## wall time and peak RSS per phase of make report against a bare script (BENCH_ARGS=...)
bench: kernels
	$(TOOLS) -m bench.run $(BENCH_ARGS)

# The one-script GPU check (bench/gpu/check.sh): packs what a network-less Python 3.12 + CUDA torch machine lacks
# (the envs' wheels as .whl/*.tar.xz, your gr00t checkout as .device/gr00t; ~48 MiB, never committed).
## pack what bench/gpu/check.sh needs on a network-less GPU machine into .whl/ and .device/
gpu-check-prepare: kernels
	$(TOOLS) -m bench.gpu.prepare $(if $(GR00T_SRC),--gr00t-src '$(GR00T_SRC)') $(if $(PY312),--python $(PY312))

# A random checkpoint with the real N1.7-3B architecture (~12 GB fp32, 5 GB shards) in build/real, with its backbone
# cache in build/real/hf_home (needs gr00t: GR00T_SRC). Then: make report CKPT=build/real/gr00t-n1.7-3b-random HF_HOME=build/real/hf_home
## a random checkpoint with the real N1.7-3B architecture in build/real (~12 GB; needs gr00t)
real-size-checkpoint: kernels
	$(ENVS)/original/bin/python -m groot_lib.tiny.generate --real-size --out build/real

# The content-addressed store of original artifacts and LeRobot replays (reports keep hard links).
## delete the artifact store in build/artifacts
clean-artifacts:
	rm -rf build/artifacts

## how every gap changed between two reports: A=, B= a folder, a bare <stamp>, latest or previous
compare-reports: kernels
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare-reports A=<stamp>|latest|previous|<folder> B=..." >&2; exit 2; }
	@$(TOOLS) -m groot_lib.compare.reports '$(A)' '$(B)' $(if $(REPORTS_DIR),--reports-root '$(REPORTS_DIR)')

## the first LeRobot commit that breaks parity: LEROBOT_SRC=<git checkout> GOOD=<rev> BAD=<rev> [CHECK='model parity']
## (each revision over the LeRobot env's packages, the report knobs as for report; build/bisect/<UTC>/)
bisect: kernels
	@test -n "$(LEROBOT_SRC)" -a -n "$(GOOD)" -a -n "$(BAD)" || { echo "usage: make bisect LEROBOT_SRC=<git checkout> GOOD=<rev> BAD=<rev> [CHECK=<check>]" >&2; exit 2; }
	@$(TOOLS) -m groot_lib.workbench.bisect run --lerobot-src '$(LEROBOT_SRC)' --good '$(GOOD)' --bad '$(BAD)' \
	  $(if $(CHECK),--check '$(CHECK)') $(REPORT_ARGS)

## many reports as Ray tasks: SPEC=<yaml|toml> (axes x knobs; RAY_ADDRESS= for a cluster); build/matrix/<UTC>/
matrix: kernels
	@test -n "$(SPEC)" || { echo "usage: make matrix SPEC=<spec.yaml> (e.g. bench/matrix-tiny-2x2.yaml)" >&2; exit 2; }
	@$(TOOLS) -m groot_lib.workbench.matrix '$(SPEC)' $(if $(STORE_DIR),--artifacts-root '$(STORE_DIR)')

## give outputs of the original made elsewhere the checkpoint's identity, after checking they fit it
## (ARTIFACTS=dir [CKPT=...] [HF_HOME=...]); then make report ARTIFACTS=dir judges them
attach-checkpoint: kernels
	@test -n "$(ARTIFACTS)" || { echo "usage: make attach-checkpoint ARTIFACTS=dir [CKPT=/path/to/checkpoint]" >&2; exit 2; }
	@$(TOOLS) -m groot_lib.core.fit '$(ARTIFACTS)' $(if $(CKPT),--checkpoint '$(CKPT)') $(if $(HF_HOME_ARG),--hf-home '$(HF_HOME_ARG)')

# Re-record references/upstream-dumps: LeRobot's own dump_original_n1_7.py, run from your huggingface/lerobot
# checkout (never copied here) on the tiny default: make record-upstream-dumps LEROBOT_SRC=/path/to/lerobot
## re-record references/upstream-dumps with LeRobot's own dump script (LEROBOT_SRC=/path/to/lerobot)
record-upstream-dumps: kernels
	@test -n "$(LEROBOT_SRC)" || { echo "usage: make record-upstream-dumps LEROBOT_SRC=/path/to/lerobot" >&2; exit 2; }
	$(TOOLS) -m groot_lib.workbench.workflow record-upstream --lerobot-src '$(LEROBOT_SRC)'

# A report's fp32 artifacts in LeRobot's own dump format (original_n1_7_<tag>.npz), for upstream's
# test_groot_vs_original.py: make export-upstream [REPORT=reports/<stamp>] [EXPORT_DIR=build/upstream]
## a report's fp32 artifacts in LeRobot's dump format (REPORT=reports/<stamp> EXPORT_DIR=build/upstream)
export-upstream: kernels
	@$(TOOLS) -m groot_lib.workbench.export $(if $(REPORT),--report '$(REPORT)') $(if $(EXPORT_DIR),--out '$(EXPORT_DIR)')

KEEP ?= 5
## keep the KEEP newest finished reports (default 5) and every run in progress; unfinished folders of dead
## runs are removed (REPORTS_DIR= for another reports folder)
clean-reports: kernels
	@$(TOOLS) -m groot_lib.workbench.report clean --keep $(KEEP) $(if $(REPORTS_DIR),--root '$(REPORTS_DIR)')

.PHONY: docs
## build the docs site from docs/ (mkdocs --strict: a broken link or anchor fails) into build/docs/site
docs: $(ENVS)/tools/$(STAMP)
	@$(ENVS)/tools/bin/mkdocs build --strict --quiet --config-file mkdocs.yml
	@echo "docs: $(CURDIR)/build/docs/site/index.html"

## delete the envs, build/ and the kernelspecs
clean:
	rm -rf $(ENVS) build kernels/*/kernel.json
