"""settings (one definition per knob, precedence, validation) and preflight's torch-free checks."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from groot_lib.workbench import preflight

from groot_lib.pipeline import handoff

from groot_lib.core import settings

from groot_lib.tiny import layout as tiny_layout
from groot_lib.core.errors import ParityError, SettingError
from groot_lib import paths


def test_defaults_env_and_explicit_values_in_that_order(monkeypatch):
    for knob in settings.KNOBS:
        if knob.env:
            monkeypatch.delenv(knob.env, raising=False)
    values, sources = settings.resolve({})
    assert values["atol"] == 1e-3 and values["variants"] == "fp32-sdpa,bf16-sdpa" and sources["atol"] == "default"
    monkeypatch.setenv("GROOT_PARITY_ATOL", "5e-4")
    values, sources = settings.resolve({})
    assert values["atol"] == 5e-4 and sources["atol"] == "$GROOT_PARITY_ATOL"  # reported, never null
    values, sources = settings.resolve({"atol": "2e-3"})
    assert values["atol"] == 2e-3 and sources["atol"].startswith("--atol")


@pytest.mark.parametrize("name, raw, expected", [
    ("atol", "-1", "expected a finite number >= 0"), ("rtol", "inf", "expected a finite number >= 0"),
    ("precision_k", "0", "expected a finite number > 0"), ("seed", "1.5", "expected an integer >= 0"),
    ("batch_size", "0", "expected an integer >= 1"), ("device", "gpu", "expected auto, cpu, cuda or cuda:N"),
    ("variants", "fp32-sdpa,fp8", "unknown: fp8"), ("noise_mode", "seeded", "expected one of seed, inject"),
    ("variants", "bf16-sdpa", "expected fp32-sdpa among them: it is the parity reference"),
])
def test_invalid_values_name_knob_source_and_expectation(name, raw, expected):
    with pytest.raises(SettingError) as err:
        settings.resolve({name: raw})
    assert f"{name} = {raw!r}" in str(err.value) and expected in str(err.value)


def test_the_parity_reference_comes_first_whatever_the_order():
    assert settings.resolve({"variants": "bf16-sdpa,fp32-sdpa"})[0]["variants"] == "fp32-sdpa,bf16-sdpa"


def test_invalid_env_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("GROOT_PARITY_RTOL", "nan")
    with pytest.raises(SettingError, match=r"\$GROOT_PARITY_RTOL"):
        settings.resolve({})


def test_unknown_setting_is_an_error():
    with pytest.raises(SettingError, match="unknown setting"):
        settings.resolve({"atoll": 1})


def test_every_make_variable_reaches_the_cli():
    """`make report VAR=value` forwards every knob that has a make variable to that knob's flag, read from the knob
    table (the Makefile names none of them): adding a knob needs no Makefile edit. HF_HOME counts only when given
    on make's command line, never from the shell."""
    import os
    import subprocess

    given = {knob.make: f"value-{i}" for i, knob in enumerate(settings.KNOBS) if knob.make}
    env = {**os.environ, "HF_HOME": "/from/the/shell"}
    proc = subprocess.run(["make", "-n", "-s", "report", *(f"{k}={v}" for k, v in given.items())], cwd=paths.REPO_ROOT,
                          capture_output=True, text=True, env=env, timeout=120)
    command = next(line for line in proc.stdout.splitlines() if "groot_lib.workbench.workflow report" in line)
    for knob in settings.KNOBS:
        if knob.make:
            assert f"{knob.flag} '{given[knob.make]}'" in command, (knob.name, command)
    shell = subprocess.run(["make", "-n", "-s", "report"], cwd=paths.REPO_ROOT, capture_output=True, text=True,
                           env=env, timeout=120).stdout
    assert "--hf-home" not in shell and "/from/the/shell" not in shell, shell
    assert "CKPT" not in paths.MAKEFILE.read_text().split("REPORT_ARGS =", 1)[1].split("\n\n", 1)[0]


@pytest.mark.parametrize("text, is_path", [("nvidia/GR00T-N1.7-3B", False), ("/abs/ckpt", True), ("./x", True),
                                           ("~/ckpt", True), ("a/b/c", False), ("a/b@v1", False), ("plainname", True)])
def test_a_path_is_never_taken_for_a_hub_id(text, is_path):
    """Hub-shaped is owner/name[/subfolder][@revision] (a/b/c is repo a/b's subfolder c); what exists on disk wins
    before this is asked (tests/core/test_checkpoint_resolver.py)."""
    from groot_lib.core import checkpoint as ckpt

    assert (ckpt.parse_hub_id(text) is None) is is_path


def test_recordings_cover_only_their_settings():
    good = {"seed": 0, "batch_size": 2, "variants": "fp32-sdpa,bf16-sdpa,bf16-flash"}
    preflight.check_recordings(good)  # flash is refused later, in the report, not here
    with pytest.raises(SettingError, match="seed=7"):
        preflight.check_recordings({**good, "seed": 7})


def test_wait_for_source_fails_fast_without_a_producer(tmp_path):
    start = time.perf_counter()
    with pytest.raises(ParityError, match="no producer is running"):
        handoff.wait_for_source(tmp_path)
    assert time.perf_counter() - start < 1


def test_wait_for_source_waits_only_while_the_announced_producer_lives(tmp_path):
    (tmp_path / handoff.RUNNING_FILE).write_text(json.dumps({"pid": os.getpid()}))  # alive: keeps waiting
    with pytest.raises(ParityError, match="within 0 s although a producer is registered"):
        handoff.wait_for_source(tmp_path, timeout=0.3, poll=0.05)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / handoff.RUNNING_FILE).write_text(json.dumps({"pid": dead.pid}))  # gone: stop at once
    with pytest.raises(ParityError, match="no producer is running"):
        handoff.wait_for_source(tmp_path, timeout=30)


def test_artifacts_without_a_producer_are_used_and_labelled(tmp_path, recorded_dir):
    import shutil

    shutil.copyfile(recorded_dir / "libero_sim.npz", tmp_path / "libero_sim.npz")
    source = handoff.wait_for_source(tmp_path)
    assert source["mode"] == "artifacts" and "no producer ran" in source["banner"] and "fp32-sdpa" in source["banner"]


def _tiny_with_config(tmp_path, **changes):
    import shutil


    dst = tmp_path / "ckpt"
    shutil.copytree(tiny_layout.TINY_CHECKPOINT, dst)
    config = json.loads((dst / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_declared_dtype_against_stored_weights(tmp_path):
    from groot_lib.core import checkpoint as ckpt

    assert ckpt.stored_dtypes(_tiny_with_config(tmp_path / "a"))["float32"] > 100  # read from the real headers
    assert ckpt.dtype_warning(_tiny_with_config(tmp_path / "b")) is None  # declares float32, stores float32
    missing = ckpt.dtype_warning(_tiny_with_config(tmp_path / "c", dtype=None))
    assert "declares no dtype (LeRobot then uses its bfloat16 default)" in missing and "stored as float32" in missing
    wrong = ckpt.dtype_warning(_tiny_with_config(tmp_path / "d", dtype="bfloat16"))
    assert "declares dtype 'bfloat16'" in wrong and '"dtype": "float32"' in wrong
    assert ckpt.dtype_warning(_tiny_with_config(tmp_path / "e", dtype=None, torch_dtype="float32")) is None  # legacy key


def test_cuda_recordings_serve_a_cpu_machine_only_with_injected_noise():
    """references/tiny-cuda (the original on an H200) covers seed 0, batch 2, fp32 and bf16; a CPU LeRobot
    can only be compared with it from the recorded noise, and pre-flight says so instead of a noise-sized FAIL."""
    good = {"seed": 0, "batch_size": 2, "variants": "fp32-sdpa,bf16-sdpa", "recordings": "cuda",
            "noise_mode": "inject", "device": "cpu"}
    preflight.check_recordings(good)
    with pytest.raises(SettingError, match="NOISE_MODE=inject"):
        preflight.check_recordings({**good, "noise_mode": "seed"})
    with pytest.raises(SettingError, match="tiny-cuda cover only seed=0"):
        preflight.check_recordings({**good, "seed": 3})
    with pytest.raises(SettingError, match="recordings = 'gpu'.*expected one of cpu, cuda"):
        settings.BY_NAME["recordings"].resolve("gpu")
