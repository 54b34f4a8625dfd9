# gr00t-parity workbench.
#   make setup [GR00T_SRC=/path/to/Isaac-GR00T]   build the three envs (incremental;
#                                                  GR00T_SRC is remembered, =none drops it)
#   make kernels | doctor | test | report | record-references | export-upstream | bench
#   make report CKPT=... TAGS=... SEED=... ATOL=... RTOL=... DEVICE=... VARIANTS=... PRECISION_K=...
# Envs are described by environment-*.yml; groot_lib/envs.py turns them into
# $(ENVS)/<name> and rebuilds one only when its YAML (or GR00T_SRC) changed.

SHELL := /bin/bash
ENVS ?= .envs
GR00T_SRC ?=
# Report knobs, one per groot_lib/settings.py Knob (its make name); empty = that knob's default.
# Every value is validated before any kernel starts (bad values exit 2 within ~1 s).
CKPT ?=
TAGS ?=
SEED ?=
BATCH ?=
ATOL ?=
RTOL ?=
DEVICE ?=
# fp32-sdpa,bf16-sdpa by default (parity + precision study); add bf16-flash on a CUDA box with flash-attn
VARIANTS ?=
PRECISION_K ?=
NOISE_MODE ?=
# without gr00t: cpu (references/tiny) or cuda (references/tiny-cuda, recorded on a GPU by bench/gpu/check.sh)
RECORDINGS ?=
# MiB per tag for the named-stage capture that localises a divergence (default 256; 0 turns it off)
STAGE_MB ?=
# auto: LeRobot's stages compared (and re-run) only for tags whose model parity fails or is SUSPECT; all | off
STAGES ?=
# auto: both kernels at once when one model at a time fits beside the other kernel, else one after the other; overlap | sequential force it
SCHEDULE ?=
MEMORY_GB ?=
# N more observations per tag stressing other inputs (prompts, batch sizes, images at real resolutions, states)
SWEEP ?=
# judge existing outputs of the original instead of running it (ARTIFACTS=dir; LeRobot's own dumps need TRUST_LEGACY=1)
ARTIFACTS ?=
TRUST_LEGACY ?=
# HF_HOME is forwarded only when given on the command line (make report HF_HOME=...): an HF_HOME in your
# shell still reaches the kernels, but never replaces the tiny default's isolated cache.
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

REPORT_ARGS := $(if $(CKPT),--checkpoint '$(CKPT)') $(if $(TAGS),--tags '$(TAGS)') \
  $(if $(SEED),--seed '$(SEED)') $(if $(BATCH),--batch-size '$(BATCH)') $(if $(ATOL),--atol '$(ATOL)') \
  $(if $(RTOL),--rtol '$(RTOL)') $(if $(DEVICE),--device '$(DEVICE)') \
  $(if $(VARIANTS),--variants '$(VARIANTS)') $(if $(PRECISION_K),--precision-k '$(PRECISION_K)') \
  $(if $(NOISE_MODE),--noise-mode '$(NOISE_MODE)') $(if $(RECORDINGS),--recordings '$(RECORDINGS)') \
  $(if $(STAGES),--stages '$(STAGES)') $(if $(STAGE_MB),--stage-mb '$(STAGE_MB)') $(if $(SCHEDULE),--schedule '$(SCHEDULE)') \
  $(if $(MEMORY_GB),--memory-gb '$(MEMORY_GB)') $(if $(ARTIFACTS),--artifacts '$(ARTIFACTS)') $(if $(SWEEP),--sweep '$(SWEEP)') \
  $(if $(TRUST_LEGACY),--trust-legacy '$(TRUST_LEGACY)') \
  $(if $(HF_HOME_ARG),--hf-home '$(HF_HOME_ARG)')

.PHONY: setup kernels doctor test report lab browser record-references clean-artifacts clean-reports compare-reports export-upstream record-upstream-dumps clean FORCE

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

kernels: setup
	@$(TOOLS) -m groot_lib.workbench.kernels install --envs $(ENVS)

doctor: kernels
	$(TOOLS) -m groot_lib.workbench.doctor

test: kernels browser
	$(TOOLS) -m pytest -q tests

# Debian's chromium, for the test that renders the report pages headless; installed once when missing (as root).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  { echo "error: the page-rendering test needs Debian's chromium: sudo apt-get install chromium" >&2; exit 1; }

# make exits 2 on any failure (FAIL or error); ./gr00t-parity report ... keeps the workflow's own 0/1/2/130.
report: kernels
	@$(TOOLS) -m groot_lib.workbench.workflow report $(REPORT_ARGS)

# JupyterLab with both kernels; Jupyter's config, settings and workspaces stay under build/jupyter, so
# nothing is written to your global Jupyter config. LAB_ARGS=--no-browser etc.
LAB_ARGS ?=
lab: kernels
	@JUPYTER_CONFIG_DIR=$(CURDIR)/build/jupyter/config JUPYTERLAB_SETTINGS_DIR=$(CURDIR)/build/jupyter/settings \
	  JUPYTERLAB_WORKSPACES_DIR=$(CURDIR)/build/jupyter/workspaces \
	  $(ENVS)/tools/bin/jupyter lab --notebook-dir=$(CURDIR) $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Re-record the committed original outputs for the tiny default and the variants checkpoint (needs GR00T_SRC once).
record-references: kernels
	$(TOOLS) -m groot_lib.workbench.workflow record --sweep 2
	$(TOOLS) -m groot_lib.workbench.workflow record --checkpoint checkpoints/tiny/gr00t-n1.7-tiny-variants --variants fp32-sdpa --stages off

# Per-phase wall time + peak RSS of `make report` (tiny + a generated scaled-up checkpoint) against
# a bare script + pytest flow: build/bench/results-<UTC>.md/.json. BENCH_ARGS=--skip-scaled etc.
.PHONY: bench gpu-check-prepare real-size-checkpoint
bench: kernels
	$(TOOLS) -m bench.run $(BENCH_ARGS)

# The one-script GPU check (bench/gpu/check.sh): packs what a network-less Python 3.12 + CUDA torch machine lacks
# (the envs' wheels as .whl/*.tar.xz, your gr00t checkout as .device/gr00t; ~48 MiB, never committed).
gpu-check-prepare: kernels
	$(TOOLS) -m bench.gpu.prepare $(if $(GR00T_SRC),--gr00t-src '$(GR00T_SRC)') $(if $(PY312),--python $(PY312))

# A random checkpoint with the real N1.7-3B architecture (~12 GB fp32, 5 GB shards) in build/real, with its backbone
# cache in build/real/hf_home (needs gr00t: GR00T_SRC). Then: make report CKPT=build/real/gr00t-n1.7-3b-random HF_HOME=build/real/hf_home
real-size-checkpoint: kernels
	$(ENVS)/original/bin/python -m groot_lib.tiny.checkpoint --real-size --out build/real

# The content-addressed store of original artifacts and LeRobot replays (reports keep hard links).
clean-artifacts:
	rm -rf build/artifacts

# How every gap changed between two reports: make compare-reports A=reports/<stamp> B=reports/<stamp>
compare-reports: kernels
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare-reports A=reports/<stamp> B=reports/<stamp>" >&2; exit 2; }
	@$(TOOLS) -m groot_lib.compare.reports '$(A)' '$(B)'

# Re-record references/upstream-dumps: LeRobot's own dump_original_n1_7.py, run from your huggingface/lerobot
# checkout (never copied here) on the tiny default: make record-upstream-dumps LEROBOT_SRC=/path/to/lerobot
record-upstream-dumps: kernels
	@test -n "$(LEROBOT_SRC)" || { echo "usage: make record-upstream-dumps LEROBOT_SRC=/path/to/lerobot" >&2; exit 2; }
	$(TOOLS) -m groot_lib.workbench.workflow record-upstream --lerobot-src '$(LEROBOT_SRC)'

# A report's fp32 artifacts in LeRobot's own dump format (original_n1_7_<tag>.npz), for upstream's
# test_groot_vs_original.py: make export-upstream [REPORT=reports/<stamp>] [EXPORT_DIR=build/upstream]
export-upstream: kernels
	@$(TOOLS) -m groot_lib.workbench.export $(if $(REPORT),--report '$(REPORT)') $(if $(EXPORT_DIR),--out '$(EXPORT_DIR)')

# Keep the KEEP newest reports/<UTC stamp>/ folders (default 5).
KEEP ?= 5
clean-reports: kernels
	@$(TOOLS) -m groot_lib.workbench.report clean --keep $(KEEP)

clean:
	rm -rf $(ENVS) build kernels/*/kernel.json
