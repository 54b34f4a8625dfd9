"""code_identity (content hashes of the code under test), machine provenance, expected gaps, summary text."""

from __future__ import annotations

import math
import subprocess

from groot_lib.core import code_identity

from groot_lib.core import machine

from groot_lib.workbench import summary
from groot_lib.compare.comparison import compare_close
from groot_lib.compare.expected_gap import SUSPECT_FACTOR, assess, expected_gap


def test_source_digest_follows_every_py_file(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "steps.py").write_text("STEPS = 4\n")
    before, files = code_identity.source_digest(pkg)
    assert files == 2
    (pkg / "sub" / "steps.py").write_text("STEPS = 3\n")
    assert code_identity.source_digest(pkg)[0] != before
    (pkg / "sub" / "steps.py").write_text("STEPS = 4\n")
    assert code_identity.source_digest(pkg)[0] == before  # content, not mtimes
    (pkg / "extra.py").write_text("")
    assert code_identity.source_digest(pkg)[0] != before  # a new module counts too


def test_package_identity_finds_without_importing(tmp_path, monkeypatch):
    (tmp_path / "never_imported_pkg").mkdir()
    (tmp_path / "never_imported_pkg" / "__init__.py").write_text("raise SystemExit('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = code_identity.package_identity("never_imported_pkg")
    assert found["files"] == 1 and found["root"] == str((tmp_path / "never_imported_pkg").resolve())
    assert code_identity.package_identity("surely_not_a_package_xyz")["code"] is None


def test_git_state_sees_uncommitted_edits(tmp_path):
    repo = tmp_path / "checkout"
    (repo / "gr00t").mkdir(parents=True)
    (repo / "gr00t" / "model.py").write_text("X = 1\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    clean = code_identity.git_state(repo / "gr00t")
    assert clean["commit"] and clean["modified"] is False
    (repo / "gr00t" / "model.py").write_text("X = 2\n")
    dirty = code_identity.git_state(repo / "gr00t")
    assert dirty["commit"] == clean["commit"] and dirty["modified"] is True
    assert dirty["changed_files"] == ["gr00t/model.py"]
    assert "uncommitted changes" in code_identity.describe({"package": "gr00t", "code": "abc", "files": 1, **dirty})


def test_cpu_info_reads_model_and_math_flags(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse avx2 fma avx512f amx_tile "
                    "avx512_bf16 ht\n")
    info = machine.cpu_info(fake)
    assert info["cpu_model"] == "Test CPU 9000"
    assert info["cpu_math_flags"] == ["amx_tile", "avx2", "avx512_bf16", "avx512f", "fma"]
    text = machine.describe({**info, "torch_cpu_capability": "AVX512", "torch_threads": 2, "onednn": "3.1"})
    assert "Test CPU 9000" in text and "AVX512" in text and "amx_tile" in text and "oneDNN 3.1" in text


def test_expected_gap_by_device_pair_and_suspect_threshold():
    cpu = expected_gap("cpu", "cpu")
    assert cpu.max_abs == 3e-6 and expected_gap("cpu", "cuda:0").max_abs == 8e-4
    assert expected_gap("cpu", "cpu", "bfloat16") is None
    assert not assess(2.7e-6, cpu).suspect  # the clean cross-CPU gap
    assert assess(4.9e-4, cpu).suspect and assess(4.9e-4, cpu).ratio > 100  # the 1% RoPE fault
    assert not assess(SUSPECT_FACTOR * 3e-6, cpu).suspect and assess(SUSPECT_FACTOR * 3e-6 * 1.01, cpu).suspect
    assert assess(math.nan, cpu) is None


def _row(actual_offset: float, **noise):
    import numpy as np

    ref = np.zeros((2, 4, 3), np.float32)
    c = compare_close(ref + np.float32(actual_offset), ref, name="action_pred", atol=1e-3, rtol=1e-3, tag="t",
                      check="model parity")
    c.noise = assess(c.max_abs, expected_gap("cpu", "cpu"))
    return c


def test_summary_names_tag_check_numbers_and_errors():
    import numpy as np

    suspect, failing = _row(4.9e-4), _row(2e-3)
    shape = compare_close(np.zeros((2, 4, 4)), np.zeros((2, 40, 132)), name="action_pred", atol=1e-3, rtol=1e-3,
                          tag="u", check="model parity")
    from groot_lib.core.report_folder import Verdicts

    payload = Verdicts.empty().payload
    verdicts = Verdicts.from_payload({**payload, "rows": [suspect.as_row(), {**failing.as_row(), "tag": "f"},
                                                          shape.as_row()]})
    text = summary.terminal_summary(code=1, index="r/index.html", banner="original outputs: x", verdicts=verdicts,
                                    errors=["consumer.ipynb: error at cell 4 (In [4]): ValueError: boom\n    x = 1"])
    lines = text.splitlines()
    assert lines[0] == "gr00t-parity: FAIL (exit 1: some check FAILS (or a variant was refused))"
    assert any(line.split()[:4] == ["t", "model", "parity", "SUSPECT"] and "163x expected gap" in line for line in lines)
    assert any(line.split()[:4] == ["f", "model", "parity", "FAIL"] and "action_pred max 0.002" in line for line in lines)
    assert any("u " in line and "shape mismatch: actual (2, 4, 4) vs expected (2, 40, 132)" in line for line in lines)
    assert "ERROR consumer.ipynb: error at cell 4 (In [4]): ValueError: boom" in text and "SUSPECT: 1 check" in text
    assert lines[-1] == "report: r/index.html"
    assert shape.as_row()["mismatched"] is None and summary.fmt(None) == "n/a" and summary.fmt(1.23456e-7) == "1.23e-07"


def test_an_internal_error_still_leaves_a_report_that_names_it(tmp_path):
    from groot_lib.workbench.workflow import _internal_error

    try:
        raise NameError("name 'json' is not defined")
    except NameError as exc:
        code, index = _internal_error(tmp_path, exc)
    assert code == 2 and index == tmp_path / "index.html"
    import html

    assert "internal error while writing the report: NameError: name 'json' is not defined" in html.unescape(index.read_text())
    assert (tmp_path / "summary.txt").read_text().startswith("gr00t-parity: ERROR (exit 2)")
    assert "Traceback" in (tmp_path / "internal-error.txt").read_text()
