"""LeRobot's own parity files (``core/upstream.py``), on real files: references/upstream-dumps is the output of
running LeRobot's ``tests/policies/groot/utils/dump_original_n1_7.py`` for real on the tiny default
(``make record-upstream-dumps``). Refused without trust, one command turns them into a normal report, and
``make export-upstream`` writes the workbench's artifacts in the same format.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import env_python
from groot_lib.core import checkpoint as ckpt
from groot_lib.core import upstream
from groot_lib.core.artifact import Artifact, artifact_path, find_artifacts, load_artifact, save_artifact
from groot_lib.core.errors import ArtifactError, CheckpointMismatchError, SchemaError, SettingError
from groot_lib.tiny import layout as tiny_layout
from groot_lib.pipeline.handoff import FAILED_FILE, RUNNING_FILE
from groot_lib.pipeline.sources import use_artifacts
from groot_lib.workbench import export
from groot_lib.workbench.export import export_upstream
from groot_lib.workbench.workflow import UPSTREAM_DUMPS, run_report
from groot_lib import paths

DUMP = UPSTREAM_DUMPS / upstream.upstream_name("libero_sim")


def test_real_dumps_are_refused_without_trust_naming_the_flag_and_members():
    assert upstream.is_upstream(DUMP) and set(upstream.object_members(DUMP)) == {"meta_keys", "meta_dtypes"}
    assert upstream.tag_of(DUMP) == "libero_sim"  # read without unpickling
    with pytest.raises(ArtifactError) as err:
        load_artifact(DUMP)
    message = str(err.value)
    assert str(DUMP) in message and "TRUST_LEGACY=1" in message and "arbitrary code" in message
    assert "meta_keys" in message and "meta_dtypes" in message


def test_trusted_dump_reads_tag_seed_device_and_typed_inputs():
    """The tag, seed and device come from the file's own members (not its name), integers stay integers."""
    art = load_artifact(DUMP, trust_legacy=True)
    assert (art.embodiment_tag, art.seed, art.producer["device"]) == ("libero_sim", 42, "cpu")
    assert art.action_pred.shape == (2, 40, 132) and art.raw == {} and art.initial_noise is None
    assert art.inputs["inputs.input_ids"].dtype == np.int64 and art.inputs["inputs.state"].dtype == np.float32
    assert art.producer["input_dtypes"]["in::inputs.pixel_values"] == "torch.float32"
    assert "taken on trust" in art.extra["warning"]
    found = find_artifacts(UPSTREAM_DUMPS)
    assert sorted(found) == sorted(tiny_layout.EMBODIMENTS)  # original_n1_7_<tag>.npz -> <tag>


def test_dump_missing_a_member_or_misnamed_is_named(tmp_path):
    with np.load(DUMP, allow_pickle=True) as npz:
        arrays = dict(npz)
    arrays.pop("seed")
    np.savez(tmp_path / DUMP.name, **arrays)
    with pytest.raises(SchemaError, match=r"lacks \['seed'\]"):
        load_artifact(tmp_path / DUMP.name, trust_legacy=True)
    shutil.copyfile(DUMP, tmp_path / upstream.upstream_name("simpler_env_widowx"))
    art = load_artifact(tmp_path / upstream.upstream_name("simpler_env_widowx"), trust_legacy=True)
    layout = ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "simpler_env_widowx")
    with pytest.raises(SchemaError, match="the file name says 'simpler_env_widowx', its embodiment_tag says 'libero_sim'"):
        upstream.check_against(art, layout)


def test_dump_from_another_checkpoint_is_refused_by_its_embodiment_id():
    art = load_artifact(DUMP, trust_legacy=True)
    art.inputs["inputs.embodiment_id"] = np.full_like(art.inputs["inputs.embodiment_id"], 7)
    with pytest.raises(CheckpointMismatchError, match=r"embodiment id\(s\) \[7\].*maps it to 2"):
        upstream.check_against(art, ckpt.embodiment_layout(tiny_layout.TINY_CHECKPOINT, "libero_sim"))


def test_one_command_turns_real_dumps_into_a_normal_report(tmp_path):
    """make report ARTIFACTS=dir TRUST_LEGACY=1: only LeRobot runs; model parity per tag within rounding (the
    dumps' own seed), what a dump cannot show is said, and the 1-frame-for-2 dump is named."""
    with pytest.raises(SettingError, match="TRUST_LEGACY=1"):
        run_report(out_root=tmp_path / "refused", artifacts_root=tmp_path / "store", artifacts=str(UPSTREAM_DUMPS))
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store",
                             artifacts=str(UPSTREAM_DUMPS), trust_legacy="1")
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    assert code == 0 and verdicts["passed"], verdicts["rows"]
    assert verdicts["source"]["mode"] == "imported" and "dump_original_n1_7.py" in verdicts["source"]["banner"]
    assert not (index.parent / "producer.ipynb").exists() and (index.parent / "consumer.html").is_file()
    rows = [r for r in verdicts["rows"] if r["check"] == "model parity"]
    # within what rounding explains between CPUs (not SUSPECT): measured 1.1e-6..1.4e-6 on an AVX512 Xeon,
    # 2.3e-6..3.1e-6 on an AVX2 EPYC
    assert len(rows) == 4 and all(r["flag"] == "" and r["max|delta|"] < 1e-5 for r in rows), rows
    assert {r["check"] for r in verdicts["rows"]} == {"model parity"}  # no raw observations: nothing else
    notes = "\n".join(verdicts["row_notes"])
    assert "feeds 2 image(s) per sample where the checkpoint's modality config asks for 4" in notes
    assert notes.count("read on trust") == 4
    skipped = {(n["tag"], n["check"]): n["why"] for n in verdicts["not_compared"]}
    assert all("holds no raw observations" in skipped[(tag, "preprocessor parity")] for tag in rows_tags(rows))
    assert all("LeRobot's dump records neither" in skipped[(tag, "decoded actions")] for tag in rows_tags(rows))
    summary = (index.parent / "summary.txt").read_text()  # what was not compared is in the terminal too
    assert "not compared:\n  preprocessor parity on libero_sim, oxe_droid" in summary, summary
    assert "LeRobot's dump records neither" in verdicts["tags"]["libero_sim"]["decoded actions"]


def rows_tags(rows: list[dict]) -> list[str]:
    return [r["tag"] for r in rows]


def test_export_writes_upstreams_format_exactly(tmp_path):
    """Exporting a dump read back writes the same members, dtypes and values as LeRobot's script did."""
    for path in sorted(UPSTREAM_DUMPS.glob("*.npz")):
        written = upstream.export(load_artifact(path, trust_legacy=True), tmp_path)
        assert written.name == path.name
        with np.load(path, allow_pickle=True) as theirs, np.load(written, allow_pickle=True) as ours:
            assert sorted(theirs.files) == sorted(ours.files)
            assert dict(zip(theirs["meta_keys"], theirs["meta_dtypes"])) == \
                   dict(zip(ours["meta_keys"], ours["meta_dtypes"]))  # in the inputs' order, which may differ
            for key in set(theirs.files) - {"meta_keys", "meta_dtypes"}:
                assert theirs[key].dtype == ours[key].dtype and np.array_equal(theirs[key], ours[key]), key


def test_export_upstream_refuses_a_seed_upstreams_test_would_not_replay(tmp_path):
    """Upstream's test reseeds with 42: the committed recordings (seed 0) are refused, naming the fix; a seed-42
    artifact exports."""
    report = tmp_path / "20990101T000000Z"
    shutil.copytree(tiny_layout.RECORDED_ROOT, report / "artifacts", ignore=shutil.ignore_patterns("*__*"))
    with pytest.raises(Exception, match="make report SEED=42"):
        export_upstream(report, tmp_path / "out")
    art = load_artifact(artifact_path(tiny_layout.RECORDED_ROOT, "simpler_env_widowx"))
    shutil.rmtree(report / "artifacts")
    save_artifact(Artifact(artifact_path(report / "artifacts", "simpler_env_widowx"), embodiment_tag=art.embodiment_tag,
                  seed=42, producer=art.producer, checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs,
                  outputs=art.outputs))
    [written] = export_upstream(report, tmp_path / "out")
    back = load_artifact(written, trust_legacy=True)
    assert back.seed == 42 and np.array_equal(back.action_pred, art.action_pred)
    assert all(np.array_equal(back.inputs[k], art.inputs[k]) for k in art.inputs)


def _seed42_report(root: Path, tags=("simpler_env_widowx",)) -> Path:
    """A report folder holding the committed recordings of ``tags`` re-saved at seed 42, as a live run here records
    them (this checkout's checkpoint and HF cache)."""
    report = root / "20990101T000000Z"
    for tag in tags:
        art = load_artifact(artifact_path(tiny_layout.RECORDED_ROOT, tag))
        environment = {**art.extra["environment"], "checkpoint": str(tiny_layout.TINY_CHECKPOINT),
                       "hf_home": str(tiny_layout.TINY_HF_HOME)}
        save_artifact(Artifact(artifact_path(report / "artifacts", tag), embodiment_tag=art.embodiment_tag, seed=42,
                      producer=art.producer, checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs,
                      outputs=art.outputs, extra={**art.extra, "environment": environment}))
    return report


def _refusal(capsys, *argv) -> str:
    """``make export-upstream``'s entry point refusing: exit 2 and one line, nothing on stdout."""
    code = export.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2 and not out, (code, out, err)
    assert err.count("\n") == 1 and err.startswith("export-upstream: error: "), err
    return err


def test_export_with_nothing_to_export_says_why_and_exits_2(tmp_path, capsys):
    """Every way the export would write nothing (or a folder upstream's test would misread) is its own line, exit 2,
    and leaves the export folder untouched."""
    out = tmp_path / "out"
    tags = sorted(tiny_layout.EMBODIMENTS)
    err = _refusal(capsys, "--report", tmp_path / "missing", "--out", out)
    assert f"{tmp_path / 'missing'} is not a folder" in err
    (tmp_path / "stray").mkdir()
    err = _refusal(capsys, "--report", tmp_path / "stray", "--out", out)
    assert "has no artifacts/ folder and holds no artifact" in err
    imported = tmp_path / "imported"  # make report ARTIFACTS=references/upstream-dumps TRUST_LEGACY=1 publishes these
    use_artifacts(UPSTREAM_DUMPS, imported / "artifacts", tags)
    err = _refusal(capsys, "--report", imported, "--out", out)
    assert "all LeRobot's own dumps (4, imported from" in err and "with ARTIFACTS=" in err
    assert err.rstrip().endswith(f"GROOT_N1_7_PARITY_DIR={UPSTREAM_DUMPS.resolve()}"), err
    bf16 = tmp_path / "bf16" / "artifacts"
    bf16.mkdir(parents=True)
    for path in tiny_layout.RECORDED_ROOT.glob("*__bf16-sdpa.npz"):
        shutil.copyfile(path, bf16 / path.name)
    err = _refusal(capsys, "--report", bf16.parent, "--out", out)
    assert "holds only bf16-sdpa artifacts" in err and "fp32-sdpa among VARIANTS" in err
    unfinished = tmp_path / "unfinished" / "artifacts"
    unfinished.mkdir(parents=True)
    (unfinished / RUNNING_FILE).write_text(json.dumps({"pid": os.getpid()}))  # a producer alive: this process
    assert "its producer is still running" in _refusal(capsys, "--report", unfinished.parent, "--out", out)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (unfinished / RUNNING_FILE).write_text(json.dumps({"pid": int(gone.stdout)}))
    err = _refusal(capsys, "--report", unfinished.parent, "--out", out)
    assert "stopped before the producer published its outputs (no source.json)" in err
    (unfinished / RUNNING_FILE).unlink()
    (unfinished / FAILED_FILE).write_text("producer.ipynb: KernelError: the kernel died\n")
    err = _refusal(capsys, "--report", unfinished.parent, "--out", out)
    assert "producer did not finish, so it left no fp32 artifact (producer.ipynb: KernelError: the kernel died)" in err
    (unfinished / FAILED_FILE).unlink()
    assert "artifacts holds no artifact" in _refusal(capsys, "--report", unfinished.parent, "--out", out)
    report = _seed42_report(tmp_path / "reports")
    err = _refusal(capsys, "--report", report, "--out", UPSTREAM_DUMPS)  # would overwrite or sit beside real dumps
    assert "already holds 4 LeRobot parity file(s) this export did not write" in err
    assert "is the report's own artifacts folder" in _refusal(capsys, "--report", report, "--out", report / "artifacts")
    assert not out.exists()
    assert sorted(p.name for p in UPSTREAM_DUMPS.iterdir()) == sorted(
        [*(upstream.upstream_name(t) for t in tags), "provenance.json"])


def test_reexport_replaces_its_own_files_only(tmp_path, capsys):
    """A second export into the same folder removes the first one's tags it does not have (upstream's test runs every
    original_n1_7_*.npz there), never a parity file it did not write."""
    out = tmp_path / "out"
    export_upstream(_seed42_report(tmp_path / "all", tags=sorted(tiny_layout.EMBODIMENTS)), out)
    [written] = export_upstream(one := _seed42_report(tmp_path / "one"), out)
    assert sorted(p.name for p in out.glob("*.npz")) == [written.name] == [upstream.upstream_name("simpler_env_widowx")]
    shutil.copyfile(DUMP, out / DUMP.name)  # a file of someone else's
    capsys.readouterr()
    assert f"({DUMP.name})" in _refusal(capsys, "--report", one, "--out", out)
    assert (out / DUMP.name).is_file() and (out / written.name).is_file()


README_MARKER = "<!-- upstream-test-command"
README = paths.REPO_ROOT / "docs" / "guide.md"  # the guide's export section (README.md links there)


def readme_command() -> str:
    """The command the docs show for upstream's test (docs/guide.md): the one line of the ```bash block after
    README_MARKER."""
    text = README.read_text()
    match = re.search(re.escape(README_MARKER) + r"[^>]*-->\s*```bash\n(.*?)\n\s*```", text, re.S)
    assert match, f"{README} has no ```bash block right after {README_MARKER} ... -->"
    lines = [line.strip() for line in match.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_export_prints_the_readmes_command(tmp_path, capsys):
    """One template: for the tiny default on CPU it is the README's text verbatim, and the export of a seed-42 report
    prints that text with its own folder and the LeRobot checkout filled in."""
    shown = readme_command()
    assert shown == export.upstream_test_command(export.DEFAULT_OUT, tiny_layout.TINY_CHECKPOINT,
                                                 tiny_layout.TINY_HF_HOME, "cpu")
    assert "GROOT_N1_7_PARITY_DIR=build/upstream " in shown and shown.count(export.LEROBOT_PLACEHOLDER) == 1
    report = _seed42_report(tmp_path / "reports")
    export_upstream(report, tmp_path / "out")
    printed = capsys.readouterr().err.splitlines()
    assert printed[-1] == shown.replace("=build/upstream ", f"={tmp_path / 'out'} "), printed
    assert any("LEROBOT_SRC=<dir>` fills it in" in line for line in printed)
    export_upstream(report, tmp_path / "out", lerobot_src=UPSTREAM_DUMPS.parent)  # no test file there: a note
    assert f"holds no {export.UPSTREAM_TEST}" in capsys.readouterr().err


UPSTREAM_TEST = export.UPSTREAM_TEST


@pytest.fixture(scope="module")
def live_export(tmp_path_factory) -> tuple[Path, Path, int]:
    """(LeRobot checkout, `make export-upstream` output of a live seed-42 report, files written). Upstream's test is
    not on PyPI and never copied here: LEROBOT_SRC names a checkout; the live producer needs gr00t (the recordings
    are seed 0)."""
    source = Path(os.environ.get("LEROBOT_SRC", "")).expanduser()
    if not os.environ.get("LEROBOT_SRC") or not (source / UPSTREAM_TEST).is_file():
        pytest.skip(f"needs upstream's {UPSTREAM_TEST}: set LEROBOT_SRC to a huggingface/lerobot checkout "
                    "(it is not in the PyPI wheel)")
    from groot_lib.workbench.preflight import gr00t_in_original_env

    if gr00t_in_original_env() != "importable":
        pytest.skip("needs the original producer live at seed 42 (make setup GR00T_SRC=...): the committed "
                    "recordings cover seed 0, which upstream's test (SEED = 42) would not replay")
    root = tmp_path_factory.mktemp("live")
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "store", seed=42,
                             variants="fp32-sdpa", device="cpu")
    assert code == 0
    written = export_upstream(index.parent, root / "upstream")
    assert len(written) == len(tiny_layout.EMBODIMENTS)
    return source, root / "upstream", len(written)


def test_upstreams_own_test_passes_on_exported_artifacts(live_export):
    """Upstream's test_groot_vs_original.py, unchanged, in the LeRobot kernel on `make export-upstream` output
    of a live seed-42 report, run from its own checkout with no pytest configuration at all."""
    source, exported, count = live_export
    env = {**os.environ, "GROOT_N1_7_PARITY_DIR": str(exported), "GROOT_PARITY_DEVICE": "cpu",
           "GROOT_N1_7_LIBERO_CKPT": str(tiny_layout.TINY_CHECKPOINT), "HF_HOME": str(tiny_layout.TINY_HF_HOME),
           "HF_HUB_OFFLINE": "1", "CI": "", "GITHUB_ACTIONS": ""}
    proc = subprocess.run([str(env_python("groot-lerobot")), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--noconftest", "-c", os.devnull, "-s", str(source / UPSTREAM_TEST)],
                          cwd=source, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0 and f"{count} passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]


def test_readmes_command_passes_as_written(live_export):
    """The README's command, its text as shown (only <lerobot> and the export folder filled in), run by bash from
    the repo root like a user pastes it."""
    source, exported, count = live_export
    text = readme_command()
    assert "GROOT_N1_7_PARITY_DIR=build/upstream " in text and export.LEROBOT_PLACEHOLDER in text
    command = text.replace(export.LEROBOT_PLACEHOLDER, str(source)).replace("=build/upstream ", f"={exported} ")
    env = {**os.environ, "CI": "", "GITHUB_ACTIONS": ""}  # upstream's test skips itself on CI
    proc = subprocess.run(["bash", "-c", command], cwd=paths.REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0 and f"{count} passed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-2000:]
