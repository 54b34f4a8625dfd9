"""Source of the two notebooks: ``python notebooks/generate.py`` rewrites producer.ipynb and consumer.ipynb.

Notebooks stay thin (they call groot_lib and show results); keeping their text here
makes them reviewable as code, and a test checks the committed .ipynb files match.
Parameter cells put a comment line above each parameter: papermill shows it as help.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from groot_lib.core.settings import KNOBS  # noqa: E402
from groot_lib.workbench.kernels import KERNELS  # noqa: E402

HERE = Path(__file__).resolve().parent


def _cell(kind: str, source: str, tags: tuple[str, ...] = ()):
    cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def md(source: str):
    return _cell("md", source.strip())


def code(source: str):
    return _cell("code", source.strip())


def params(source: str):
    return _cell("code", source.strip(), ("parameters",))


CELL_TIMEOUT = 1800  # seconds per cell (nbmake's metadata.execution.timeout): a hung cell cannot hang a report


def knob_params(side: str) -> str:
    """Parameter lines for the knobs of ``side`` (settings.Knob.sides): each knob's help, and its default (None
    where an environment variable may set it, so a notebook run on its own still honours that variable)."""
    lines = []
    for knob in KNOBS:
        if side not in knob.sides:
            continue
        name = knob.name
        if knob.env:
            fallback = f"${knob.env} if set" if knob.default is None else f"${knob.env}, else {knob.default}"
            lines += [f"# {knob.help} None is {fallback}", f"{name} = None"]
        else:
            lines += [f"# {knob.help}", f"{name} = {knob.default!r}"]
    return "\n".join(lines)


def notebook(kernel: str, cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": KERNELS[kernel][1], "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["execution"] = {"timeout": CELL_TIMEOUT}
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives identical files
    nb.cells = list(cells)
    return nb


PRODUCER = notebook("groot-original", [
    md("""
# Producer: NVIDIA's original `gr00t`

Runs in the **groot-original** kernel. For each embodiment tag and variant it builds observations from the
checkpoint's own metadata, runs the original preprocessor + model with a fixed seed (later variants start from
the first variant's initial noise), and writes one `groot-parity-artifact/1` file. Artifacts are content-addressed:
one whose inputs did not change is **reused** and no model is loaded for it. Without `gr00t`, the embedded tiny
default falls back to the committed recordings.
"""),
    params(knob_params("producer") + """
# never reach the Hugging Face hub
offline = True
# where this run's artifacts are published
output_dir = "build/artifacts/manual"
# content-addressed store, empty is build/artifacts
store_dir = ""
"""),
    code("""
from groot_lib.backends import process
checkpoint, environment = process.setup_notebook(checkpoint, hf_home, offline=offline)
environment
"""),
    code("""
from IPython.display import Markdown
from groot_lib.pipeline import produce as producer

from groot_lib.core import settings

# every knob above, resolved once (a value given here > its environment variable > its default)
knobs = settings.for_notebook("producer", globals())
result = producer.produce(checkpoint, output_dir, knobs, environment=environment, store_dir=store_dir or None)
Markdown(f"**{result.banner}**")
"""),
    code("""
import pandas as pd

for note in result.notes:
    print("note:", note)
for variant, why in result.refused.items():
    print(f"REFUSED {variant}: {why}")
display(pd.DataFrame(result.summary_rows()))
pd.Series(result.timings, name="seconds / MB").to_frame()
"""),
])

CONSUMER = notebook("groot-lerobot", [
    md("""
# Consumer: LeRobot's GR00T N1.7 against the original

Runs in the **groot-lerobot** kernel.

* **Model parity**: replay the artifact's byte-identical collated inputs with the recorded seed (or injected
  initial noise) through LeRobot's model; compare the full `action_pred` (never cropped).
* **Preprocessor parity**: replay the raw observations through LeRobot's own preprocessor; compare with the
  original's collated inputs (token tensors exactly, `pixel_values`/`state` within atol/rtol).
* **Precision study**: for each low-precision variant, each side's noise floor (its low-precision run against its
  own fp32 run, same initial noise) beside the cross-implementation gap; the gap must stay within k x the larger
  floor.

LeRobot's outputs are content-addressed: a rerun that changes only tolerances or plots loads no model.
"""),
    params(knob_params("consumer") + """
# the producer's artifacts folder
artifacts_dir = "build/artifacts/manual"
# LeRobot variants, empty is every variant the producer wrote
variants = ""
offline = True
output_dir = "build/consumer"
# content-addressed store of LeRobot's outputs, empty is build/artifacts
store_dir = ""
"""),
    code("""
from IPython.display import Markdown
from groot_lib.backends import process
from groot_lib.pipeline import consume as consumer

checkpoint, environment = process.setup_notebook(checkpoint, hf_home, offline=offline)
# imports LeRobot while the producer runs (make report starts both notebooks), then takes its source.json
source, warm = consumer.await_producer(artifacts_dir)
Markdown(f"**{source['banner']}**\\n\\n(imported {', '.join(warm['imported']) or 'nothing'} in {warm['imports']:.1f} s "
         f"while the producer ran; then waited {warm['waited for producer']:.1f} s for it)")
"""),
    code("""
from groot_lib.core import settings

# every knob above, resolved once (a value given here > its environment variable > its default)
knobs = settings.for_notebook("consumer", globals())
report = consumer.run_all(checkpoint, artifacts_dir, knobs, variants=variants, source=source,
                          store_dir=store_dir or None)
results = report.results
reuse = "all reused, no model loaded" if report.reused else f"{report.replays.models_loaded} model load(s)"
Markdown(f"Tolerances: atol={knobs.atol:g}, rtol={knobs.rtol:g}; initial noise: **{knobs.noise_mode}**; "
         f"LeRobot outputs: **{reuse}**")
"""),
    code("""
import pandas as pd

for variant, why in report.refused.items():
    print(f"REFUSED {variant}: {why}")
for note in report.replays.notes:
    print("note:", note)
pd.DataFrame(report.replays.rows())
"""),
    md("""
## Verdicts

`x expected gap` sets each model-parity gap against what rounding alone explains for its device pair
(`groot_lib.compare.expected_gap`); a row more than 10x above it is flagged **SUSPECT** even when it passes atol/rtol.
"""),
    code("""
from groot_lib.compare.comparison import verdict_table

from groot_lib.compare.numbers import fmt, verdict_styled

verdict_styled(verdict_table([c for r in results for c in r.comparisons]).to_dict("records"),
               columns=("verdict", "flag"))
"""),
    code("""
for line in report.where():
    print(f"{line['status']} {line['tag']} / {line['check']}: {line['text']}")
for item in report.not_compared():
    print(f"not compared: {item['tag']} / {item['check']}: {item['why']}")
if not report.where():
    print("every check passes within rounding: nothing to localise")
"""),
    md("""
## Where: |delta| over action horizon x action dim (max over the batch)

Only the embodiment's valid horizon x dims are drawn, dims named by action group; the title says what the padding
(computed, then discarded by the policy) holds. Marked cells violate |delta| <= atol + rtol*|ref|.
"""),
    code("""
from IPython.display import Image

for title, figure in report.heatmaps():
    print(title)
    if isinstance(figure, bytes):
        display(Image(figure))
    else:
        print(figure)
"""),
    md("""
## What the robot gets: decoded actions

The original policy's `decode_action` (unnormalise each action group with the checkpoint's statistics, relative
groups made absolute against the raw state) against LeRobot's postprocessor, both on the original's `action_pred`,
so only the decoding differs. Units are the embodiment's; dims are named by action group.
"""),
    code("""
for r in results:
    if r.decoded is None:
        print(f"{r.tag}: decoded actions not compared: {r.decoded_missing}")
for title, figure in report.decoded_heatmaps():
    if isinstance(figure, bytes):
        display(Image(figure))
    else:
        print(title, "-", figure)
"""),
    md("""
## One training step (TRAIN=1)

The same training sample through each side's training preprocessing (**training targets**: the encoded `action`,
`action_mask`, `state`), then each side's training forward and backward on the original's collated inputs with the
original's random draws (**training loss**; **gradients** of every trainable parameter, each scaled by its largest
|g|). The heatmap shows the per-element action loss |delta| over (horizon x named action dims); the recipe table
puts each side's fine-tuning defaults side by side.
"""),
    code("""
import pandas as pd

for r in results:
    if not r.training:
        print(f"{r.tag}: training step not compared: {r.training_missing}")
for title, figure in report.training_heatmaps():
    if isinstance(figure, bytes):
        display(Image(figure))
    else:
        print(title, "-", figure)
for tag, rows in report.recipes().items():
    print(f"{tag}: fine-tuning recipe, original vs LeRobot")
    display(pd.DataFrame(rows).set_index("setting"))
"""),
    md("""
## Input sweep

With `SWEEP=N` the producer also ran N more observations per embodiment, each stressing other inputs: prompts of
different lengths in one batch (left padding), punctuation, upper case, digits, non-ASCII; batch sizes 1, 3 and 4;
gradients, edges and noise at the tag's real camera resolution or an odd small size; states inside, at the edge of
and outside the checkpoint's range. Per check: max |delta| across the cases and the worst case with its inputs.
"""),
    code("""
if not report.sweep:
    print("no input sweep (SWEEP=0): SWEEP=N adds N observations per embodiment")
else:
    display(verdict_styled([s.as_row() for s in report.sweep_summary], numbers=["min max|delta|", "median", "max"]))
    for r in report.sweep:
        for c in r.comparisons:
            if not c.passed:
                print(f"{r.tag} / {r.case} {r.inputs}:\\n{c.format()}\\n")
"""),
    md("""
## Where it starts: the first diverging stage

Both runs record their named stages (vision tower, each text layer, the backbone's output, the VL layer norm and
self-attention, the state encoder, and per flow step the action encoder, timestep encoder, each DiT block, the DiT
output and the action decoder). Compared in the order they ran, the first stage whose relative error exceeds what
rounding explains is where the divergence starts; later stages inherit it. Tables and profiles are shown for tags
that fail, are SUSPECT, or have a stage above rounding.
"""),
    code("""
for r in results:
    if r.stages is None:
        print(f"{r.tag}: not compared: {r.stages_missing}")
        continue
    print(f"{r.tag}: {r.stages.describe()}")
    for note in r.stages.notes:
        print("   note:", note)
    if r.shows_stages:
        display(pd.DataFrame([row.as_dict() for row in r.stages.rows]).style.apply(
            lambda col: ["background:#fdd" if v else "" for v in col], subset=["flagged"]).format(fmt, subset=["max|delta|", "relative"]))
for tag, title, figure in report.stage_figures():
    display(Image(figure))
"""),
    md("""
## Preprocessing: which element, which token, which view

For a failing input tensor: state elements named by group and index with both normalised values, the raw value and
the group's statistics; both token sequences decoded and aligned at the first differing position (this also
explains a length change); each camera view as both preprocessors left it, with the difference image. And the
end-to-end effect: LeRobot's model on LeRobot's own preprocessed inputs against the same model on the original's.
"""),
    code("""
from groot_lib.compare import plots

for r in results:
    effect = r.preprocessing_effect
    if effect is not None:
        print(f"{r.tag}: LeRobot's model on its own inputs vs on the original's: max |delta| "
              f"{effect['max|delta|']:.3g} on action_pred")
    for c in r.preprocessor:
        if not c.details:
            continue
        print(f"{r.tag} / {c.name}:")
        display(pd.DataFrame([{k: v for k, v in row.items() if k != "images"} for row in c.details]))
        for row in c.details:
            if row.get("images") is not None and row.get("max |delta|"):
                display(Image(plots.png(plots.view_panels(*row["images"], title=f"{r.tag}: {row['view']}"))))
"""),
    md("""
## Precision study

Per embodiment and low-precision variant, all from the same initial noise: the fp32 implementation gap, each
side's noise floor (low precision vs its own fp32), and the cross-implementation gap at low precision. Verdict:
cross gap <= k x the larger noise floor (the rule FlashAttention's tests use).
"""),
    code("""
if not report.precision:
    print("no precision study: run the producer with a low-precision variant, e.g. variants='fp32-sdpa,bf16-sdpa'")
else:
    display(verdict_styled([v.as_row() for v in report.precision]))
    display(pd.DataFrame([g.as_row(v.tag, v.variant) for v in report.precision for g in v.gaps]).style.format(fmt))
"""),
    code("""
for tag, variant, figure in report.precision_figures():
    display(Image(figure))
"""),
    md("## Details of failing checks"),
    code("""
failing = [c for r in results for c in r.comparisons if not c.passed]
for c in failing:
    print(c.format(), end="\\n\\n")
for r in results:
    for c in r.comparisons:
        for note in c.notes:
            print(f"{r.tag} / {c.name}: {note}")
for v in report.precision:
    if not v.passed:
        print(f"precision {v.tag} / {v.variant}: FAIL: {v.reason}")
print(f"{len(failing)} failing check(s), {sum(not v.passed for v in report.precision)} failing precision verdict(s)")
"""),
    code("""
report.timings.update({k: warm[k] for k in ("imports", "waited for producer")})
path = consumer.write_verdicts(report, output_dir, source=source,
                               settings={"atol": knobs.atol, "rtol": knobs.rtol, "noise_mode": knobs.noise_mode,
                                         "checkpoint": checkpoint})
suspect = "".join(f"\\n\\n**SUSPECT** {name}: passes atol/rtol, far above rounding" for name in
                  (f"{c.tag} / {c.name}" for c in report.suspect))
Markdown(f"### Overall: {'PASS' if report.passed else 'FAIL'} (verdicts written to `{path.name}`){suspect}")
"""),
])

EXPLORE = notebook("groot-lerobot", [
    md("""
# Explore a report

Pick a report folder (or two: `compare_to` is the *before*), an embodiment, a batch element and a few action dims.
Everything here reads the report folder alone (its `artifacts/` and `lerobot/` keep both sides' outputs), so old
reports stay explorable after `make clean-artifacts`. Runs top to bottom in JupyterLab (`make lab`) and under
papermill alike.
"""),
    params("""
# report folder, empty is the newest under reports/
report = ""
# a second report to compare with (the earlier one), empty is none
compare_to = ""
# embodiment tag, empty is the report's first
tag = ""
batch = 0
# action dims: indices or names like eef[0],eef[6]; empty is the first four valid dims
dims = ""
"""),
    code("""
from IPython.display import Image, Markdown
from groot_lib.backends import process
from groot_lib.compare import explore, reports
from groot_lib.core import report_folder
from groot_lib.compare.numbers import fmt
from groot_lib.compare.plots import png
import pandas as pd

def show(fig):
    display(Image(png(fig)))


process.setup_notebook(None, None)  # work from the repo root, as every notebook here does
report = report or str(explore.newest_report("reports"))
data = explore.load_tag(report, tag)
before = explore.load_tag(compare_to, data.tag) if compare_to else None
picked = explore.parse_dims(data, dims)
Markdown(f"**{data.tag}** from `{report}`; valid region {data.valid[0]} steps x {data.valid[1]} dims; "
         f"showing batch element {batch}, dims {', '.join(data.labels[d] for d in picked)}")
"""),
    md("## Trajectories: normalised, then decoded to the embodiment's units"),
    code("""
show(explore.trajectories(data, batch, picked, other=before))
show(explore.trajectories(data, batch, picked, decoded=True, other=before))
"""),
    md("## Where: |delta| over the valid region, padding apart"),
    code("""
show(explore.valid_heatmap(data))
print(explore.padding_summary(data))
show(explore.histogram(data))
"""),
    md("## Worst elements, named"),
    code("""
worst = explore.worst_elements(data)
for region, rows in worst.items():
    print(f"{region}:")
    display(pd.DataFrame(rows).style.format({"original": fmt, "LeRobot": fmt, "|delta|": fmt}) if rows else "none")
"""),
    md("## Where it starts: stage localisation"),
    code("""
verdicts = report_folder.read_verdicts(report)
rows = explore.divergence_rows(verdicts)
display(pd.DataFrame(rows) if rows else "this report has no stage comparison (made before groot_lib captured stages)")
"""),
    md("## Before / after"),
    code("""
if before is None:
    print("no compare_to report given")
else:
    display(pd.DataFrame(reports.gap_changes(report_folder.read_verdicts(compare_to), report_folder.read_verdicts(report))))
"""),
])

INVESTIGATE = notebook("groot-lerobot", [
    md("""
# Investigate live

Both implementations loaded once and kept: this kernel holds LeRobot's model, and starts the **groot-original**
kernel, which holds the original's. Edit an observation (prompt, a camera frame or a region of it, state values,
batch), choose the seed, an explicit initial noise or the number of flow steps, and `probe` runs both and judges them
by the report's own rules: verdicts, SUSPECT, where it goes wrong and by how much, the heatmap. `sweep` varies one
edit and plots the gap along it; `save` writes a probe as a regular report folder. Without gr00t the original's side
serves the committed recordings: only their observations can be probed, as recorded. If the original's kernel dies
(out of memory, a segfault), the next probe says so and why; `session.restart()` loads it again. Close the session
when done (it also ends when this kernel does: no orphan kernel, no model held).
"""),
    params("""
# checkpoint folder or hub id, empty is the embedded tiny default
checkpoint = ""
# embodiment tag to probe
tag = "libero_sim"
# device of both sides: auto, cpu, cuda
device = "auto"
# where a saved probe goes, empty is reports/
out_root = ""
"""),
    code("""
from IPython.display import Image, Markdown
import pandas as pd
from groot_lib.compare.plots import png
from groot_lib.pipeline import investigate

session = investigate.Session.open(checkpoint or None, device=device)
Markdown(f"**{session.banner}**")
"""),
    md("## The tag's fixed observation, probed"),
    code("""
base = session.observation(tag)
probe = session.probe(base)
display(Markdown(probe._repr_markdown_()), pd.DataFrame(probe.rows()))
figure = probe.heatmap()
display(Image(figure)) if isinstance(figure, bytes) else print(figure)
print(probe.seconds)
"""),
    md("## Edits, and a family along one axis (the original live)"),
    code("""
if session.described["mode"] != "live":
    print(session.banner)
else:
    edited = session.probe(base.with_prompt("open the top drawer").with_state(next(
        k[len("state."):] for k in base.raw if k.startswith("state.")), 0.0), steps=2)
    display(Markdown(edited._repr_markdown_()))
    family = session.sweep(base, investigate.prompt_words(
        "put the bowl on the plate then close the microwave door and wipe the table"), [1, 2, 4, 8, 14],
        label="prompt words")
    display(pd.DataFrame(family.rows()), Image(png(family.plot())))
"""),
    md("""
## An edit only one side reads differently

An empty instruction: model parity replays the original's own tokens, so the two models still agree; preprocessor
parity runs LeRobot's preprocessor on the same observation, and it tokenises something else (LeRobot 0.6.1 puts its
default task in). The probe's first line says which side moved.
"""),
    code("""
if session.described["mode"] == "live":
    display(session.probe(base.with_prompt("")))
"""),
    md("## Save the probe as a report folder, then close"),
    code("""
index = session.save(probe, out_root or None)
session.close()
Markdown(f"saved: `{index}`")
"""),
])

NOTEBOOKS = {"producer.ipynb": PRODUCER, "consumer.ipynb": CONSUMER, "explore.ipynb": EXPLORE,
             "investigate.ipynb": INVESTIGATE}


def main(out_dir: Path = HERE) -> None:
    for name, nb in NOTEBOOKS.items():
        nbformat.validate(nb)
        (out_dir / name).write_text(nbformat.writes(nb) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
