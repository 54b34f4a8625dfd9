"""End to end: real papermill runs of the real notebooks in the real kernels on the tiny default."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import nbformat
import numpy as np
import pytest

from conftest import planted_notebooks
from groot_lib.core import report_folder, settings
from groot_lib.pipeline import handoff
from groot_lib.pipeline import sources

from groot_lib.tiny import layout as tiny_layout
from groot_lib.core.artifact import Artifact, artifact_path, load_artifact, save_artifact
from groot_lib.core.errors import MissingPackageError
from groot_lib.workbench.notebook_runner import NotebookExecutionError, run_notebook
from groot_lib.workbench.workflow import NOTEBOOKS, REPO, run_report

TAG = "simpler_env_widowx"


def consume(artifacts_dir, output_dir, **params):
    """The consumer notebook alone, fp32 only unless asked, with its own LeRobot store."""
    params = {"variants": "fp32-sdpa", "store_dir": str(output_dir / "store"), **params}
    run_notebook(NOTEBOOKS / "consumer.ipynb", output_dir / "consumer.ipynb", kernel_name="groot-lerobot", cwd=REPO,
                 parameters={"artifacts_dir": str(artifacts_dir), "output_dir": str(output_dir), **params})
    return json.loads((output_dir / "verdicts.json").read_text())


def text_of(html_path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "\n", html_path.read_text()))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The default report (fp32 parity + bf16 precision study) into a fresh store."""
    root = tmp_path_factory.mktemp("report")
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "store")
    return code, index, json.loads((index.parent / "verdicts.json").read_text()), root


def test_report_states_origin_first_and_passes_on_tiny_default(report):
    code, index, verdicts, _ = report
    body = index.read_text().split("</style>", 1)[1]  # after the page's <title> and style
    text = re.sub(r"<[^>]+>", "\n", body)
    first_line = next(line for line in text.splitlines() if line.strip())
    assert first_line.startswith("original outputs: "), first_line
    assert ("not run live" in first_line) == (verdicts["source"]["mode"] == "recorded")
    for page in ("producer.html", "consumer.html"):
        assert (index.parent / page).stat().st_size > 10_000
    rows = verdicts["rows"]
    assert {r["tag"] for r in rows} == set(tiny_layout.EMBODIMENTS)
    assert {(r["check"], r["tensor"]) for r in rows} >= {("model parity", "action_pred"), ("preprocessor parity", "input_ids"),
                                                         ("preprocessor parity", "pixel_values"), ("preprocessor parity", "state")}
    failing = [r for r in rows if r["verdict"] != "PASS"]
    assert not failing, json.dumps(failing, indent=1)
    assert verdicts["suspect"] == [] and {r["flag"] for r in rows} == {""}  # clean runs sit within rounding
    progress = (index.parent / "progress.log").read_text()
    for tag in tiny_layout.EMBODIMENTS:  # one progress line per tag and side reached the terminal
        assert f"producer: {tag} fp32-sdpa:" in progress and f"consumer: {tag} fp32-sdpa: LeRobot" in progress
    assert not [k for k in os.environ if k in ("GROOT_PARITY_PROGRESS", "GROOT_PARITY_PHASES",
                                               "GROOT_PARITY_KERNEL_LOG")]  # restored
    assert all(r["x expected gap"] <= 1.0 for r in rows if r["check"] == "model parity"), rows
    assert code == 0 and verdicts["passed"] is True
    phases = json.loads((index.parent / "timings.json").read_text())["phases"]
    assert phases["consumer compute"] > 0 and phases["total"] >= max(phases["producer notebook"], phases["consumer notebook"])


def test_the_timeline_holds_one_model_at_a_time_and_splits_the_wall(report):
    """timings.json's timeline is what memory planning rests on: the producer releases every model before it
    publishes, the consumer loads nothing before that, while its imports overlap the producer. The wall time splits
    into model work (imports, loads, compute; overlaps counted once) and the workbench's plumbing."""
    _, index, _, _ = report
    timings = json.loads((index.parent / "timings.json").read_text())
    spans = timings["timeline"]

    def of(side, phase):
        return [s for s in spans if s["side"] == side and s["phase"] == phase]

    published = of("producer", "publish")
    assert timings["schedule"] == "overlap" and len(published) == 1, timings["schedule"]
    assert all(s["end"] <= published[0]["start"] for s in of("producer", "release"))
    loads = of("consumer", "checkpoint load")
    assert loads and min(s["start"] for s in loads) >= published[0]["end"]
    assert min(s["start"] for s in of("consumer", "imports")) < published[0]["start"]  # imported while it ran
    assert of("producer", "notebook") and of("consumer", "notebook") and of("workflow", "html export")
    wall = timings["wall"]
    busy = sum(s["end"] - s["start"] for s in spans if s["phase"] in ("imports", "checkpoint load", "compute"))
    assert 0 < wall["model"] <= busy + 0.01 and wall["model"] < wall["total"], wall
    assert abs(wall["model"] + wall["plumbing"] - wall["total"]) < 0.02, wall


def test_decoded_actions_in_report(report):
    """What the robot gets, per tag: the original's decode_action vs LeRobot's postprocessor, identical up to float32
    rounding in the embodiment's units (relative EEF groups included), with a heatmap; LeRobot's LIBERO gripper
    convention (applied by NVIDIA's rollout wrapper, not its policy) is named, not hidden."""
    _, index, verdicts, _ = report
    rows = {r["tag"]: r for r in verdicts["rows"] if r["check"] == "decoded actions"}
    assert set(rows) == set(tiny_layout.EMBODIMENTS)
    for tag, row in rows.items():
        layout = tiny_layout.EMBODIMENTS[tag]
        assert row["shape"].startswith(f"(2, {layout['action_horizon']}, {sum(layout['action'].values())})"), row
        assert row["verdict"] == "PASS" and row["max|delta|"] < 1e-5, row
        assert verdicts["decoded_figures"][tag] == f"figures/{tag}-decoded.png"
    note = next(n for n in verdicts["row_notes"] if n.startswith("libero_sim / decoded actions"))
    assert "'libero' environment transform" in note and "gripper[0]" in note
    assert "decoded actions" in text_of(index)


def test_precision_study_in_report(report):
    code, index, verdicts, _ = report
    rows = verdicts["precision"]
    assert {(r["tag"], r["variant"]) for r in rows} == {(t, "bf16-sdpa") for t in tiny_layout.EMBODIMENTS}
    for r in rows:
        # bf16 noise floors are real (non-zero) and bounded (see test_precision.py for the bound)
        assert 1e-4 < r["original floor"] < 0.1 and 1e-4 < r["LeRobot floor"] < 0.1, r
        assert 0 < r["cross gap"] <= r["bound"] == 2 * max(r["original floor"], r["LeRobot floor"]), r
        assert r["fp32 implementation gap"] <= 1e-3 and r["verdict"] == "PASS", r
    pairs = {(g["tag"], g["role"]) for g in verdicts["precision_gaps"]}
    assert len(pairs) == 4 * len(tiny_layout.EMBODIMENTS)
    assert "Precision study" in text_of(index)
    consumer_html = (index.parent / "consumer.html").read_text()
    assert "Precision study" in consumer_html
    assert consumer_html.count("<img") >= 2 * len(tiny_layout.EMBODIMENTS)  # parity heatmaps + precision grids


def test_pages_are_offline_self_contained_and_open_with_a_verdict_matrix(report):
    _, index, verdicts, _ = report
    page = index.read_text()
    matrix = page[page.index("<table class='matrix'>"):page.index("</table>", page.index("<table class='matrix'>"))]
    for tag in tiny_layout.EMBODIMENTS:
        assert f"href='#tag-{tag}'" in matrix and f"<section id='tag-{tag}'>" in page
    assert matrix.count("class='pass'") == 4 * len(tiny_layout.EMBODIMENTS)  # model, preprocessor, decoded, precision
    # thumbnails travel inside: per tag the action_pred, the decoded-action and the precision-study heatmaps
    assert page.count("src='data:image/png;base64,") == 3 * len(tiny_layout.EMBODIMENTS)
    assert page.count(" decoded actions' src='data:image/png") == len(tiny_layout.EMBODIMENTS)
    assert page.count(" precision study' src='data:image/png") == len(tiny_layout.EMBODIMENTS)
    for name in ("index.html", "consumer.html", "producer.html"):
        html_text = (index.parent / name).read_text()
        remote = re.findall(r"<(?:script|link|img)\b[^>]*(?:src|href)=[\"']https?://[^\"']*", html_text)
        assert not remote and "import mermaid from" not in html_text, (name, remote)
        assert 'data-mime-type="application/vnd.jupyter.stderr"' not in html_text, name  # a collapsed log, not red boxes
    assert '<details class="log"><summary>log (' in (index.parent / "consumer.html").read_text()
    assert (index.parent / verdicts["figures"][TAG]).is_file()


def test_rerun_with_new_tolerances_reuses_outputs_and_shows_refusal(report):
    """Only tolerances/k change: no model reruns (one damaged stored replay is recomputed, with a note);
    a flash variant on this CPU box is refused, named in the report, and makes the run non-passing."""
    first_code, first_index, _, root = report
    stored = sorted((root / "store" / "lerobot").glob("*.npz"))
    assert len(stored) == 2 * len(tiny_layout.EMBODIMENTS)
    stored[0].write_bytes(stored[0].read_bytes()[:100])
    code, index = run_report(out_root=root / "reports", artifacts_root=root / "store", atol=2e-3, precision_k=0.5,
                             variants="fp32-sdpa,bf16-sdpa,bf16-flash,bf16-sdpa-flash")
    verdicts = json.loads((index.parent / "verdicts.json").read_text())
    statuses = [r["status"] for r in verdicts["replays"]]
    assert statuses.count("computed") == 1 and statuses.count("reused") == len(statuses) - 1, statuses
    assert {(r["attention"], r["device"]) for r in verdicts["replays"]} == {("sdpa", "cpu")}  # provenance kept
    assert any("unusable, recomputing" in n and stored[0].name in n for n in verdicts["notes"]), verdicts["notes"]
    assert {r["status"] for r in verdicts["source"]["rows"]} <= {"reused", "recorded"}  # no original model ran
    refusal = verdicts["refused"]["bf16-flash"]
    assert "CUDA" in refusal and "flash-attn" in refusal and "Not falling back to SDPA" in refusal
    assert "REFUSED bf16-flash" in text_of(index)
    assert "FLASH_ATTENTION backend" in verdicts["refused"]["bf16-sdpa-flash"] and "REFUSED bf16-sdpa-flash" in text_of(index)
    assert verdicts["settings"]["atol"] == 2e-3 and verdicts["settings"]["precision_k"] == 0.5
    # measured cross/floor ratios on tiny are 0.9-1.3: k=0.5 fails them all, from the stored outputs
    assert [r["verdict"] for r in verdicts["precision"]] == ["FAIL"] * len(tiny_layout.EMBODIMENTS)
    assert code == 1 and verdicts["passed"] is False
    assert index.parent != first_index.parent and first_index.is_file() and first_code == 0


def test_kernel_death_mid_consumer_still_writes_the_report(tmp_path):
    notebooks = planted_notebooks(tmp_path, "consumer.ipynb", "consumer.run_all",
                                  "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", offset=1)
    after = next(i for i, c in enumerate(nbformat.read(str(NOTEBOOKS / "consumer.ipynb"), as_version=4).cells)
                 if "consumer.run_all" in c.source)
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             tags=TAG, variants="fp32-sdpa")
    text = text_of(index)
    assert code == 2 and "gr00t-parity: ERROR" in text and "1 notebook error(s)" in text
    assert f"kernel died at cell {after + 1}" in text and "os.kill(os.getpid(), signal.SIGKILL)" in text
    assert (index.parent / "consumer.ipynb").is_file() and (index.parent / "consumer.html").is_file()
    assert load_artifact(artifact_path(index.parent / "artifacts", TAG)).embodiment_tag == TAG  # nothing lost


def test_failing_producer_stops_the_waiting_consumer(tmp_path):
    """The two notebooks run at once; when the producer fails, the consumer stops instead of waiting."""
    notebooks = planted_notebooks(tmp_path, "producer.ipynb", "producer.produce",
                                  "raise RuntimeError('planted producer failure')")
    code, index = run_report(out_root=tmp_path / "reports", artifacts_root=tmp_path / "store", notebooks=notebooks,
                             tags=TAG, variants="fp32-sdpa")
    text = text_of(index)
    assert code == 2
    assert "producer.ipynb: error at cell" in text and "RuntimeError: planted producer failure" in text
    assert "consumer.ipynb: error at cell" in text and "the producer did not finish" in text
    summary = (index.parent / "summary.txt").read_text()
    assert summary.startswith("gr00t-parity: ERROR (exit 2") and "ERROR producer.ipynb: error at cell" in summary


def test_nan_and_inf_in_original_output_fail_with_counts(artifacts_copy, tmp_path):
    path = artifact_path(artifacts_copy, TAG)
    art = load_artifact(path)
    art.outputs["action_pred"][0, 2, 1] = np.nan
    art.outputs["action_pred"][1, 0, 0] = np.inf
    save_artifact(Artifact(path, embodiment_tag=art.embodiment_tag, seed=art.seed, producer=art.producer,
                  checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs, outputs=art.outputs,
                  variant=art.variant, extra=art.extra))
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG)
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and "expected has 1 NaN, 1 Inf" in model["reason"], model
    assert verdicts["passed"] is False


def test_perturbed_action_pred_fails_on_exactly_that_cell(artifacts_copy, tmp_path):
    path = artifact_path(artifacts_copy, TAG)
    art = load_artifact(path)
    art.outputs["action_pred"][1, 3, 5] += np.float32(1e-2)
    art.outputs["action_pred"][0, 20, 100] += np.float32(5e-2)  # a larger error in padding: reported apart
    save_artifact(Artifact(path, embodiment_tag=art.embodiment_tag, seed=art.seed, producer=art.producer,
                  checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs, outputs=art.outputs,
                  variant=art.variant, extra=art.extra))
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG)
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and model["mismatched"] == 2
    assert verdicts["tags"][TAG]["violating_cells"] == [[3, 5], [20, 100]]
    assert verdicts["tags"][TAG]["n_violating_valid"] == 1 and verdicts["tags"][TAG]["n_violating_padding"] == 1
    details = "\n".join(o.get("text", "") for c in nbformat.read(str(tmp_path / "out" / "consumer.ipynb"), 4).cells
                        for o in c.get("outputs", []))
    worst = details[details.index("worst elements inside the valid region"):].splitlines()
    assert worst[2].strip().startswith("batch 1, step 3, eef[5] "), worst  # the valid cell first, named
    assert "padding outside the valid 8 steps x 7 dims: max |delta| 0.05, 1 of" in details
    # smallest atol that passes at rtol=1e-3: |delta| - rtol * |reference|
    reference = float(art.outputs["action_pred"][0, 20, 100])  # the largest excess, here in padding
    assert model["min atol to pass"] == pytest.approx(5e-2 - 1e-3 * abs(reference), rel=1e-3)
    assert all(r["verdict"] == "PASS" for r in verdicts["rows"] if r["check"] == "preprocessor parity")


@pytest.mark.parametrize("damage, expected", [
    ("truncate", r"truncated|corrupt"),
    ("schema", r"schema 'groot-parity-artifact/0'.*expected 'groot-parity-artifact/1'"),
])
def test_bad_artifacts_give_clear_errors(artifacts_copy, tmp_path, damage, expected):
    path = artifact_path(artifacts_copy, TAG)
    if damage == "truncate":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        with np.load(path, allow_pickle=False) as npz:
            arrays = dict(npz)
        arrays["meta::schema"] = np.array("groot-parity-artifact/0")
        np.savez(path, **arrays)
    with pytest.raises(NotebookExecutionError) as err:
        consume(artifacts_copy, tmp_path / "out", tags=TAG)
    message = str(err.value)
    assert re.search(expected, message), message
    assert str(path) in message and "Traceback" not in message
    assert (tmp_path / "out" / "consumer.ipynb").exists()  # the executed notebook is kept for inspection


def test_shape_mismatch_fails_and_is_never_cropped(artifacts_copy, tmp_path):
    path = artifact_path(artifacts_copy, TAG)
    art = load_artifact(path)
    art.outputs["action_pred"] = np.ascontiguousarray(art.outputs["action_pred"][:, :16, :7])
    art.outputs.pop("initial_noise", None)
    save_artifact(Artifact(path, embodiment_tag=art.embodiment_tag, seed=art.seed, producer=art.producer,
                  checkpoint=art.checkpoint, raw=art.raw, inputs=art.inputs, outputs=art.outputs,
                  variant=art.variant, extra=art.extra))
    verdicts = consume(artifacts_copy, tmp_path / "out", tags=TAG)
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "FAIL" and model["shape"] == "(2, 40, 132) vs (2, 16, 7)"


def test_recordings_refuse_settings_they_do_not_cover(tmp_path):
    with pytest.raises(MissingPackageError, match="seed=7"):
        sources.use_recordings(tiny_layout.TINY_CHECKPOINT, tmp_path, ["libero_sim"], ["fp32-sdpa"],
                               settings.for_notebook("producer", {"seed": 7}), reason="test")
    result = sources.use_recordings(tiny_layout.TINY_CHECKPOINT, tmp_path, ["libero_sim"], ["fp32-sdpa"],
                                    settings.for_notebook("producer"), reason="test")
    assert result.mode == "recorded" and "not run live" in result.banner
    assert handoff.read_source(tmp_path)["mode"] == "recorded"
    assert load_artifact(result.artifacts["libero_sim"]["fp32-sdpa"]).embodiment_tag == "libero_sim"


def test_compare_reports_shows_every_gap_change(report, tmp_path):
    """Two real report folders, B with one planted change: the table and page say which gap moved, and how much."""
    from groot_lib.compare import reports

    _, index, verdicts, _ = report
    a = index.parent
    b = tmp_path / "B"
    shutil.copytree(a, b)
    changed = json.loads((b / "verdicts.json").read_text())
    row = next(r for r in changed["rows"] if r["tag"] == TAG and r["check"] == "model parity")
    row["max|delta|"], row["verdict"] = 5e-3, "FAIL"
    (b / "verdicts.json").write_text(json.dumps(changed))
    out, rows = reports.write_comparison(a, b)
    moved = [r for r in rows if r["A max|delta|"] != r["B max|delta|"]]
    assert [(r["tag"], r["check"], r["B max|delta|"], r["A"], r["B"]) for r in moved] == \
        [(TAG, "model parity", 5e-3, "PASS", "FAIL")]
    assert len(rows) == len(verdicts["rows"]) + len(verdicts["precision"])
    page = out.read_text()
    assert out.parent == b and "src='data:image/png;base64," in page and "0.005" in page
    with pytest.raises(reports.ParityError, match="not a finished report: no verdicts.json"):
        report_folder.read_verdicts(tmp_path)


def test_explore_notebook_runs_on_a_report_folder(report, tmp_path):
    """explore.ipynb under papermill in the LeRobot kernel: trajectories, valid-region heatmap, histogram, and the
    worst elements named by (batch, step, action group[index]); before/after against a second folder."""
    _, index, _, _ = report
    out = run_notebook(NOTEBOOKS / "explore.ipynb", tmp_path / "explore.ipynb", kernel_name="groot-lerobot", cwd=REPO,
                       parameters={"report": str(index.parent), "compare_to": str(index.parent), "tag": TAG,
                                   "batch": 1, "dims": "eef[0],eef[6]"})
    nb = nbformat.read(str(out), as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") + "".join(str(o.get("data", {}).get(kind, ""))
                                                  for kind in ("text/markdown", "text/html")) for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # 2 trajectories, heatmap, histogram
    assert "showing batch element 1, dims eef[0], eef[6]" in text
    assert "padding (" in text and "discarded by the policy" in text
    worst = text[text.index("valid:"):]
    assert re.search(r"eef\[\d\]", worst) and "pad[" not in worst.split("padding:")[0]  # valid rows are named dims
    assert "B / A" in text  # the before/after table


CHROMIUM_OWN = re.compile(r"^https?://[^/]*(google|gstatic|googleapis)\.com/")  # the browser's own background calls


def test_pages_render_in_headless_chromium_offline(report):
    """index.html and the consumer page in Debian's chromium: no console errors, no request of the page's own
    (every host resolves to nothing, so none would leave the machine anyway), matrix and embedded images in the
    rendered DOM; a screenshot is kept in build/test-output/."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("Debian's chromium is not installed; `make test` installs it (apt-get install chromium)")
    _, index, _, _ = report
    shots = REPO / "build" / "test-output"
    shots.mkdir(parents=True, exist_ok=True)
    for page in (index, index.parent / "consumer.html"):
        netlog = index.parent / f".{page.stem}.netlog.json"
        proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               f"--user-data-dir={index.parent / '.chromium'}", "--host-resolver-rules=MAP * ~NOTFOUND",
                               "--enable-logging=stderr", "--v=0", f"--log-net-log={netlog}", "--window-size=1280,2000",
                               f"--screenshot={shots / (page.stem + '.png')}", "--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=120)
        console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
        assert not console, (page.name, console)
        requested = set(re.findall(r'"url":"([^"]+)"', netlog.read_text()))
        own = sorted(u for u in requested if u.startswith(("http://", "https://")) and not CHROMIUM_OWN.match(u))
        assert not own, (page.name, own)
        assert (shots / (page.stem + ".png")).stat().st_size > 10_000
        if page == index:
            assert 'class="matrix"' in proc.stdout and proc.stdout.count('src="data:image/png;base64,') >= 4


def test_cpu_lerobot_against_the_cuda_recorded_original(tmp_path):
    """RECORDINGS=cuda: the original as it ran on an H200 (bench/gpu/check.sh), replayed here on the CPU from its
    recorded noise. The page and verdicts say where the original ran; fp32 parity holds within the CPU/CUDA
    rounding gap and is never SUSPECT; seeded noise (a CPU generator) would not be comparable, and is refused."""
    result = sources.use_recordings(tiny_layout.TINY_CHECKPOINT, tmp_path / "art", [TAG], ["fp32-sdpa"],
                                    settings.for_notebook("producer", {"recordings": "cuda"}), reason="test")
    assert "recorded on cuda (NVIDIA H" in result.banner and "torch 2.11" in result.banner, result.banner
    verdicts = consume(tmp_path / "art", tmp_path / "out", tags=TAG, noise_mode="inject", device="cpu", stages="all")
    model = next(r for r in verdicts["rows"] if r["check"] == "model parity")
    assert model["verdict"] == "PASS" and 0 < model["max|delta|"] < 5e-3, model  # CPU vs CUDA rounding, not zero
    assert not verdicts["suspect"] and model["x expected gap"] < 10, model  # measured 0.57x
    assert "recorded on cuda" in verdicts["source"]["banner"]
    # the CUDA recordings carry their stages: compared at the cpu/cuda threshold, none above it when clean
    stages = verdicts["tags"][TAG]["stages"]
    assert len(stages["stages"]) == 44 and verdicts["first_divergence"][TAG] == {"state": "none", "stages compared": 44}, \
        stages.get("notes")


def test_clean_tags_skip_lerobots_stage_work_under_stages_auto(report):
    """STAGES=auto (default): the original records its stages, LeRobot compares and re-runs its own only for the
    tags whose parity fails or is SUSPECT; on a clean run every tag says so and names no divergence."""
    _, index, verdicts, _ = report
    for tag, summary in verdicts["tags"].items():
        assert verdicts["first_divergence"][tag]["state"] == "not compared", verdicts["first_divergence"][tag]
        assert verdicts["first_divergence"][tag]["why"].startswith("model parity holds"), verdicts["first_divergence"]
        assert summary["stages"]["not compared"].startswith("model parity holds"), summary["stages"]
    assert load_artifact(artifact_path(index.parent / "artifacts", TAG)).stages  # the original's are kept


def test_model_seconds_count_overlapping_spans_once(tmp_path, monkeypatch):
    """The wall split: two kernels importing at once are 1 model second per second, not 2; a gap is plumbing;
    a torn last line (a kernel killed mid-write) is skipped, not fatal."""
    from groot_lib.pipeline import progress

    path = tmp_path / "phases.jsonl"
    monkeypatch.setenv(progress.PHASES_ENV, str(path))
    progress.record("consumer", "imports", 0.0, 4.0)
    progress.record("producer", "imports", 1.0, 3.0)
    progress.record("producer", "compute", 3.5, 6.0)
    progress.record("producer", "store", 6.0, 7.0)  # the workbench's, not the model's
    progress.record("consumer", "checkpoint load", 8.0, 9.0)
    with progress.span("consumer", "compute", totals := {}):
        pass
    with open(path, "a") as handle:
        handle.write('{"side": "consumer", "phase": "comp')
    spans = progress.read_spans(path)
    assert len(spans) == 6 and totals["compute"] >= 0
    assert progress.busy_seconds(spans[:5]) == pytest.approx(4.0 + 2.0 + 1.0)  # compute overlaps imports by 0.5 s
