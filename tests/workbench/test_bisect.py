"""make bisect on a real git history built here from LeRobot's installed source: the installed package as the
first commit, a harmless edit, a planted fault (one fewer flow step), another harmless edit. Real kernels, the real
tiny checkpoint, the real report per revision; the installed LeRobot env is never changed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lerobot_history
import pytest

from groot_lib.core.errors import ParityError
from groot_lib.paths import REPO_ROOT
from groot_lib.workbench import bisect

KNOBS = {"tags": "libero_sim"}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    repo = tmp_path_factory.mktemp("lerobot-history")
    return repo, lerobot_history.build(repo)


def test_bisect_names_the_commit_that_drops_a_flow_step_and_where_it_diverges(history, tmp_path):
    """GOOD = the installed source, BAD = the head: the fault's commit is named with its subject and its report,
    model parity FAILs there with a where line; the user's checkout, its worktrees and the LeRobot env are as before."""
    repo, shas = history
    before = subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True, text=True).stdout
    package, _ = lerobot_history.installed_lerobot()
    digest = _digest(package)

    outcome = bisect.bisect(repo, shas["installed"], shas["head"], knobs=KNOBS, store=tmp_path / "store",
                            root=tmp_path / "bisect")

    assert outcome.first_bad is not None, outcome.lines("any")
    assert outcome.first_bad.revision == shas["fault"], outcome.lines("any")
    assert outcome.first_bad.subject == "one fewer flow step"
    assert any("libero_sim / model parity / action_pred" in line for line in outcome.first_bad.fails), \
        outcome.first_bad.fails
    assert any("model parity" in line for line in outcome.first_bad.where), outcome.first_bad.where
    assert Path(outcome.first_bad.report).is_file()
    verdicts = {s.revision: s.verdict for s in outcome.steps}
    assert verdicts[shas["installed"]] == "good" and verdicts[shas["head"]] == "bad"
    assert verdicts.get(shas["harmless"], "good") == "good"
    text = "\n".join(outcome.lines("any"))
    assert f"first bad commit: {shas['fault'][:12]} one fewer flow step" in text, text
    saved = json.loads((outcome.folder / "bisect.json").read_text())
    assert saved["first_bad"]["revision"] == shas["fault"]

    assert subprocess.run(["git", "-C", str(repo), "worktree", "list"], capture_output=True,
                          text=True).stdout == before
    assert subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip() == shas["head"]
    assert not subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True,
                              text=True).stdout
    assert _digest(package) == digest  # the LeRobot env's own source is untouched


def _digest(package: Path) -> str:
    from groot_lib.core.code_identity import source_digest

    return source_digest(package)[0]


def test_a_revision_that_cannot_import_or_needs_other_packages_is_skipped_not_blamed(history, tmp_path):
    """A revision whose lerobot raises on import ends its report in ERROR: skip, with the error; one whose
    pyproject needs a torch the env lacks is refused by name before any kernel starts."""
    repo, shas = history
    plan = bisect.Plan(tmp_path / "plan", bisect.ANY_FAIL, tmp_path / "store", KNOBS)
    plan.folder.mkdir()
    plan.save()
    tree = tmp_path / "tree"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(tree), shas["installed"]],
                   check=True)
    try:
        lerobot_history.edit(tree / "pyproject.toml", "dependencies = [", 'dependencies = ["torch>=99", ')
        refused = bisect.judge(plan, tree)
        assert refused.verdict == "skip" and refused.report is None
        assert "torch>=99 (installed " in refused.reason, refused.reason

        subprocess.run(["git", "-C", str(tree), "checkout", "-q", "--", "pyproject.toml"], check=True)
        (tree / "src/lerobot/__init__.py").write_text('raise ImportError("planted: this revision does not import")\n')
        broken = bisect.judge(plan, tree)
        assert broken.verdict == "skip", broken
        assert broken.report and "ERROR" in (Path(broken.report).parent / "summary.txt").read_text()
        assert bisect.STEP_EXIT[broken.verdict] == 125
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=True)


def test_bad_input_is_one_line_before_any_kernel(history, tmp_path):
    """Not a checkout, an unknown revision, GOOD not before BAD: each one clear line, exit 2, nothing run."""
    repo, shas = history
    for args, expected in (
            ([str(tmp_path), shas["installed"], shas["head"]], "not a git checkout"),
            ([str(repo), "no-such-rev", shas["head"]], "GOOD=no-such-rev: no such commit"),
            ([str(repo), shas["head"], shas["installed"]], "is not an ancestor of BAD")):
        proc = subprocess.run([sys.executable, "-m", "groot_lib.workbench.bisect", "run", "--lerobot-src", args[0],
                               "--good", args[1], "--bad", args[2], "--out-root", str(tmp_path / "b")],
                              capture_output=True, text=True, cwd=REPO_ROOT)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "b").exists()
    with pytest.raises(ParityError, match="no lerobot package"):
        bisect.source_root(tmp_path)
