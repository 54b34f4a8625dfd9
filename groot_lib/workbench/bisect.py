"""Which LeRobot commit broke parity: ``make bisect LEROBOT_SRC=<git checkout> GOOD=<rev> BAD=<rev>``.

git bisect picks the revisions, in a worktree of the user's checkout (their own tree and bisect state are never
touched). Each revision runs as an *overlay* on the LeRobot env: a ``groot-lerobot`` kernelspec found first on
JUPYTER_PATH whose PYTHONPATH puts the revision's source ahead of the installed LeRobot; ``.envs/lerobot`` is not
changed and its dependencies are used as pinned (a revision whose pyproject needs other ones is refused by name and
skipped). Every step is a regular report sharing one artifact store, so the original's model runs once and later
steps reuse its stored outputs; LeRobot's replays are keyed by its source, so a rerun reuses every revision judged.
A revision is bad when the chosen check FAILs (default: any FAIL), skipped when its report cannot be made (an import
error, a refusal), never blamed for it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from groot_lib.core.atomic import atomic_write_text
from groot_lib.core.errors import ParityError
from groot_lib.paths import REPO_ROOT as REPO

BISECT_ROOT = REPO / "build" / "bisect"
ANY_FAIL = "any"
STEP_EXIT = {"good": 0, "bad": 1, "skip": 125}  # what `git bisect run` reads
EXTRAS = ("groot",)  # the LeRobot env installs lerobot[groot]


@dataclass(frozen=True)
class Step:
    """One revision judged: good, bad or skip, why, and the report it was judged on (None when none was made)."""

    revision: str
    subject: str
    verdict: str
    reason: str
    report: str | None
    fails: list[str]  # 'tag / check / tensor: max |delta|' of each FAIL row
    where: list[str]  # the report's where lines


@dataclass(frozen=True)
class Plan:
    """What every step of one bisect shares (saved as plan.json, so the steps `git bisect run` starts read it)."""

    folder: Path  # build/bisect/<stamp>: plan.json, steps/, reports/, overlays/, tree/
    check: str  # ANY_FAIL or a check name ('model parity', ...)
    store: Path  # the shared artifact store
    knobs: dict  # report knobs by name, as given

    @property
    def tree(self) -> Path:
        return self.folder / "tree"

    def save(self) -> None:
        atomic_write_text(self.folder / "plan.json", json.dumps(
            {"check": self.check, "store": str(self.store), "knobs": self.knobs}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "Plan":
        try:
            data = json.loads((folder / "plan.json").read_text())
            return cls(folder, data["check"], Path(data["store"]), data["knobs"])
        except (OSError, ValueError, KeyError) as exc:
            raise ParityError(f"{folder / 'plan.json'}: not a bisect plan ({type(exc).__name__}: {exc})") from None


def git(repo: Path, *args: str, check: bool = True) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ParityError(f"git {' '.join(args)} in {repo}: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip()


def source_root(tree: Path) -> Path:
    """The folder to put on PYTHONPATH so ``import lerobot`` loads this tree's package (src/ layout or flat)."""
    for candidate in (tree / "src", tree):
        if (candidate / "lerobot" / "__init__.py").is_file():
            return candidate
    raise ParityError(f"{tree} holds no lerobot package (looked for src/lerobot/__init__.py and lerobot/__init__.py)")


def unmet_requirements(tree: Path) -> list[str]:
    """What the revision's pyproject requires that the LeRobot env does not have (checked in that env)."""
    from groot_lib.workbench.kernels import interpreter

    python = interpreter("groot-lerobot")
    if python is None:
        raise ParityError("no groot-lerobot kernel: run `make kernels`")
    proc = subprocess.run([str(python), "-m", "groot_lib.core.requirements", str(tree), *EXTRAS], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ParityError(f"checking {tree}'s requirements failed: {proc.stderr.strip()[-400:]}") from None
    if "error" in answer:
        raise ParityError(answer["error"])
    return answer["unmet"]


def overlay_kernels(tree: Path, where: Path) -> Path:
    """A JUPYTER_PATH entry whose ``groot-lerobot`` kernel is the LeRobot env with ``tree``'s source first."""
    from groot_lib.workbench.kernels import kernel_spec

    spec = kernel_spec("groot-lerobot")
    spec["env"]["PYTHONPATH"] = str(source_root(tree))
    spec["display_name"] += f" + {tree.name} overlay"
    atomic_write_text(where / "kernels" / "groot-lerobot" / "kernel.json", json.dumps(spec, indent=2) + "\n")
    return where


def overlay_mismatch(verdicts, tree: Path) -> str | None:
    """None when the report's LeRobot replays ran ``tree``'s code; else what they ran instead (the overlay kernel
    was not used: a verdict on the wrong code must never count)."""
    from groot_lib.core.code_identity import source_digest

    package = source_root(tree) / "lerobot"
    ran = {row.get("lerobot code") for row in verdicts.replays} - {None}
    expected = source_digest(package)[0]
    if ran and ran != {expected}:
        return f"ran LeRobot code {sorted(ran)}, not the overlay's {expected} ({package}): the overlay was not used"
    return None


def judge(plan: Plan, tree: Path) -> Step:
    """The revision checked out in ``tree``, run as a report over the LeRobot env and classified by the plan's check."""
    from groot_lib.compare.numbers import fmt

    revision, subject = git(tree, "rev-parse", "HEAD"), git(tree, "log", "-1", "--format=%s")

    def step(verdict: str, reason: str, report: Path | None = None, verdicts=None) -> Step:
        fails = [f"{r.tag} / {r.check} / {r.tensor}: max |delta| {fmt(r.max_abs) if r.max_abs is not None else 'n/a'}"
                 for r in (verdicts.rows if verdicts else []) if r.status == "FAIL"]
        where = [f"{w.tag} / {w.check}: {w.text}" for w in (verdicts.where if verdicts else [])]
        result = Step(revision, subject, verdict, reason, str(report) if report else None, fails, where)
        atomic_write_text(plan.folder / "steps" / f"{revision}.json", json.dumps(asdict(result), indent=2) + "\n")
        return result

    try:
        unmet = unmet_requirements(tree) if source_root(tree) else []
    except ParityError as exc:
        return step("skip", str(exc))
    if unmet:
        return step("skip", "needs what the LeRobot env does not have: " + "; ".join(unmet))
    try:
        code, index = _report(plan, tree, revision)
    except ParityError as exc:
        return step("skip", f"refused before any kernel started: {exc}")
    verdicts = _verdicts(index)
    if code == 2 or verdicts is None:
        return step("skip", _error_line(index), index)
    wrong = overlay_mismatch(verdicts, tree)
    if wrong:
        raise ParityError(f"the report for {revision[:12]} {wrong}")
    failing = [r for r in verdicts.rows if r.status == "FAIL" and plan.check in (ANY_FAIL, r.check)]
    if failing:
        return step("bad", f"{len(failing)} FAIL row(s) by {_judged_by(plan.check)}", index, verdicts)
    return step("good", "PASS" if code == 0 else f"no FAIL in '{plan.check}' (other checks fail)", index, verdicts)


def _report(plan: Plan, tree: Path, revision: str) -> tuple[int, Path]:
    """(exit status, index.html) of one report whose LeRobot kernel is the overlay."""
    from groot_lib.workbench.workflow import run_report

    kernels = overlay_kernels(tree, plan.folder / "overlays" / revision[:12])
    saved = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(kernels), str(REPO), *filter(None, [saved])])
    try:
        return run_report(out_root=plan.folder / "reports" / revision[:12], artifacts_root=plan.store, **plan.knobs)
    finally:
        if saved is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = saved


def _verdicts(index: Path):
    from groot_lib.core import report_folder

    try:
        return report_folder.read_verdicts(index.parent)
    except ParityError:
        return None


def _error_line(index: Path) -> str:
    """The report's first error line, and where the report is."""
    summary = index.parent / "summary.txt"
    lines = [line.strip() for line in summary.read_text().splitlines() if "error" in line.lower()] \
        if summary.is_file() else []
    return (lines or ["the report ended in ERROR"])[0] + f" ({index.parent})"


def _judged_by(check: str) -> str:
    return "any check" if check == ANY_FAIL else f"'{check}'"


@dataclass(frozen=True)
class Outcome:
    """A finished bisect: the first bad commit (None when skipped revisions leave it open) and every step."""

    first_bad: Step | None
    candidates: list[str]  # when open: the revisions it could be
    steps: list[Step]
    folder: Path

    @property
    def exit_code(self) -> int:
        return 0 if self.first_bad else 2

    def lines(self, check: str) -> list[str]:
        counts = {v: sum(s.verdict == v for s in self.steps) for v in ("good", "bad", "skip")}
        out = [f"gr00t-parity bisect: {len(self.steps)} revisions judged by {_judged_by(check)} "
               f"({counts['good']} good, {counts['bad']} bad, {counts['skip']} skipped)"]
        out += [f"  skipped {s.revision[:12]} {s.subject}: {s.reason}" for s in self.steps if s.verdict == "skip"]
        if self.first_bad is None:
            return out + ["  no single first bad commit: skipped revisions leave it among " + ", ".join(
                c[:12] for c in self.candidates)]
        bad = self.first_bad
        out += [f"  first bad commit: {bad.revision[:12]} {bad.subject}", f"  its report: {bad.report}"]
        out += [f"  FAIL {line}" for line in bad.fails[:8]] + [f"  where: {line}" for line in bad.where[:8]]
        return out


def bisect(lerobot_src: Path, good: str, bad: str, *, check: str = ANY_FAIL, knobs: dict | None = None,
           store: Path | None = None, root: Path = BISECT_ROOT) -> Outcome:
    """Judge BAD and GOOD (they must be bad and good), then let git bisect pick the rest; the worktree goes after."""
    from groot_lib.core.store import DEFAULT_ROOT

    src = Path(lerobot_src).expanduser().resolve()
    if not (src / ".git").exists():
        raise ParityError(f"LEROBOT_SRC={lerobot_src}: not a git checkout (bisect needs LeRobot's history)")
    good_rev, bad_rev = (git(src, "rev-parse", "--verify", "--quiet", f"{r}^{{commit}}", check=False) or
                         _unknown(src, name, r) for name, r in (("GOOD", good), ("BAD", bad)))
    if subprocess.run(["git", "-C", str(src), "merge-base", "--is-ancestor", good_rev, bad_rev]).returncode:
        raise ParityError(f"GOOD={good} ({good_rev[:12]}) is not an ancestor of BAD={bad} ({bad_rev[:12]})")
    plan = Plan(root / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"), check,
                Path(store or DEFAULT_ROOT).resolve(), dict(knobs or {}))
    plan.folder.mkdir(parents=True)
    plan.save()
    git(src, "worktree", "add", "--detach", str(plan.tree), bad_rev)
    try:
        return _run(plan, good_rev, bad_rev)
    finally:
        git(plan.tree, "bisect", "reset", "--quiet", check=False)
        git(src, "worktree", "remove", "--force", str(plan.tree), check=False)
        git(src, "worktree", "prune", check=False)


def _unknown(src: Path, name: str, rev: str) -> str:
    raise ParityError(f"{name}={rev}: no such commit in {src}")


def _run(plan: Plan, good: str, bad: str) -> Outcome:
    ends = []
    for rev, wanted in ((bad, "bad"), (good, "good")):
        git(plan.tree, "checkout", "--quiet", "--detach", rev)
        step = judge(plan, plan.tree)
        ends.append(step)
        if step.verdict != wanted:
            raise ParityError(f"{'BAD' if wanted == 'bad' else 'GOOD'}={rev[:12]} ({step.subject}) is {step.verdict}, "
                              f"not {wanted}, by {_judged_by(plan.check)}: {step.reason}; nothing to bisect "
                              f"(its report: {step.report})")
    git(plan.tree, "bisect", "start", bad, good)
    command = [sys.executable, "-m", "groot_lib.workbench.bisect", "step", str(plan.folder)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run(["git", "-C", str(plan.tree), "bisect", "run", *command], env=env, capture_output=True,
                          text=True)
    found = re.search(r"^([0-9a-f]{40}) is the first bad commit", proc.stdout, re.M)
    steps = {s.revision: s for s in map(_read_step, sorted((plan.folder / "steps").glob("*.json")))}
    if found:
        first = found.group(1)
        outcome = Outcome(steps.get(first) or judge(plan, plan.tree), [], list(steps.values()), plan.folder)
    else:
        candidates = re.findall(r"^([0-9a-f]{40})$", proc.stdout, re.M)
        if not candidates:
            raise ParityError(f"git bisect run ended without a verdict (exit {proc.returncode}): "
                              f"{(proc.stderr or proc.stdout).strip()[-600:]}")
        outcome = Outcome(None, candidates, list(steps.values()), plan.folder)
    atomic_write_text(plan.folder / "bisect.json", json.dumps(
        {"first_bad": asdict(outcome.first_bad) if outcome.first_bad else None, "candidates": outcome.candidates,
         "check": plan.check, "good": good, "bad": bad, "steps": [asdict(s) for s in outcome.steps]}, indent=2) + "\n")
    return outcome


def _read_step(path: Path) -> Step:
    return Step(**json.loads(path.read_text()))


def main(argv: list[str] | None = None) -> int:
    from groot_lib.core import settings

    parser = argparse.ArgumentParser(prog="make bisect", description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "step"),
                        help="run: the whole bisect; step: judge the revision checked out here (git bisect run)")
    parser.add_argument("folder", nargs="?", type=Path, help="step: the bisect's folder (plan.json)")
    parser.add_argument("--lerobot-src", type=Path, help="a huggingface/lerobot git checkout (LEROBOT_SRC=)")
    parser.add_argument("--good", help="a revision where parity holds (GOOD=)")
    parser.add_argument("--bad", help="a later revision where it fails (BAD=)")
    parser.add_argument("--check", default=ANY_FAIL,
                        help="what makes a revision bad: 'any' FAIL (default) or one check, e.g. 'model parity'")
    for knob in settings.KNOBS:
        parser.add_argument(knob.flag, dest=knob.name, help=f"{knob.help} (default {knob.default})")
    parser.add_argument("--out-root", type=Path, help=f"where bisect folders go (default {BISECT_ROOT})")
    parser.add_argument("--artifacts-root", type=Path, help="artifact store (default build/artifacts)")
    args = parser.parse_args(argv)
    try:
        if args.command == "step":
            plan = Plan.load(args.folder)
            step = judge(plan, Path.cwd())
            print(f"{step.revision[:12]} {step.verdict}: {step.reason}")
            return STEP_EXIT[step.verdict]
        missing = [flag for flag, value in (("LEROBOT_SRC", args.lerobot_src), ("GOOD", args.good), ("BAD", args.bad))
                   if not value]
        if missing:
            parser.error(f"give {', '.join(missing)}: make bisect LEROBOT_SRC=<git checkout> GOOD=<rev> BAD=<rev>")
        knobs = {k.name: getattr(args, k.name) for k in settings.KNOBS if getattr(args, k.name) is not None}
        outcome = bisect(args.lerobot_src, args.good, args.bad, check=args.check, knobs=knobs,
                         store=args.artifacts_root, root=args.out_root or BISECT_ROOT)
    except ParityError as exc:
        print(f"gr00t-parity bisect: error: {exc}", file=sys.stderr)
        return 2 if args.command == "run" else 128  # a step that cannot judge stops git bisect run
    print("\n".join(outcome.lines(args.check)))
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
