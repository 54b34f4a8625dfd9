"""The docs a newcomer reads: a short README whose links land, and a docs/ site that builds with mkdocs --strict
(broken links and anchors are errors) and whose settings table comes from settings.KNOBS, so it cannot drift."""
from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

from groot_lib.core import settings
from groot_lib.workbench import docs_hooks, makehelp
from tests.conftest import REPO

README = REPO / "README.md"
README_MAX_LINES = 150
# The project's CI reads these two lines within the README's first 40.
FIRST_COMMANDS = (
    "make report   # builds the envs + kernels if needed, runs the parity report on the embedded tiny default",
    "make test     # builds everything from scratch if needed, then runs the whole test suite (CI runs this)",
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")  # [text](target); images excluded


def mkdocs(*args: str, config: Path = REPO / "mkdocs.yml") -> subprocess.CompletedProcess:
    """The tools env's mkdocs (this interpreter's: `make test` runs pytest there)."""
    try:
        import mkdocs as _  # noqa: F401
    except ImportError:
        pytest.fail(f"mkdocs is not installed in {sys.prefix}: environment-tools.yml lists it; run `make setup`")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    proc = mkdocs("--site-dir", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


def test_docs_build_strictly(site):
    """Every page in nav built; no warning (strict), so no broken link, missing anchor or page left out."""
    for page in ("index", "guide", "reading-a-report", "settings", "checks", "design", "findings", "performance"):
        assert (site / f"{page}.html").is_file(), page


def test_strict_build_fails_on_a_broken_anchor(tmp_path):
    """mkdocs.yml's validation makes a missing #anchor (and an unknown page) an error, not an info line."""
    import yaml

    docs = tmp_path / "docs"
    subprocess.run(["cp", "-r", str(REPO / "docs"), str(docs)], check=True)
    with (docs / "findings.md").open("a") as page:
        page.write("\n[a missing anchor](guide.md#no-such-heading) and [a missing page](no-such-page.md)\n")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    config["docs_dir"] = str(docs)
    config["hooks"] = [str(REPO / hook) for hook in config["hooks"]]
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    proc = mkdocs("--site-dir", str(tmp_path / "site"), config=tmp_path / "mkdocs.yml")
    assert proc.returncode != 0
    assert "does not contain an anchor '#no-such-heading'" in proc.stderr, proc.stderr
    assert "no-such-page.md" in proc.stderr


def _rows(page: str) -> dict[str, str]:
    """Table rows of a built page by their first cell's text, each row as plain text cells joined by ' | '."""
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
                 for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        if cells:
            rows[cells[0]] = cells
    return rows


def test_settings_page_is_generated_from_knobs(site):
    """Every knob's make variable, flag, environment variable, default and help, as settings.KNOBS says."""
    page = (site / "settings.html").read_text()
    assert docs_hooks.PLACEHOLDER not in page and "knobs-table" not in page
    rows = _rows(page)
    for knob in settings.KNOBS:
        assert knob.name in rows, f"knob {knob.name} missing from the settings page"
        _, make, flag, env, default, help_text = rows[knob.name]
        expected_default = ("empty" if knob.default in (None, "") else
                            str(int(knob.default)) if isinstance(knob.default, bool) else str(knob.default))
        assert (make, flag, env, default) == (knob.make or "", knob.flag, knob.env or "", expected_default), knob.name
        assert help_text == knob.help, knob.name
    assert len([name for name in rows if name in settings.BY_NAME]) == len(settings.KNOBS)


def test_a_new_knob_reaches_the_table_without_touching_docs(monkeypatch):
    new = settings.Knob("frobnicate", 7, str, "Frobnicate with <care> | *stars* and_underscores.", make="FROB",
                        env="GROOT_PARITY_FROB")
    monkeypatch.setattr(makehelp, "KNOBS", (*settings.KNOBS, new))
    table = docs_hooks.knobs_table()
    assert "| `frobnicate` | `FROB` | `--frobnicate` | `GROOT_PARITY_FROB` | `7` |" in table
    assert r"&lt;care&gt; \| \*stars\* and\_underscores." in table
    assert len(table.splitlines()) == 2 + len(settings.KNOBS) + 1


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail to docs/"
    for command in FIRST_COMMANDS:
        assert command in lines[:40], f"README.md's first 40 lines lack: {command}"


def _anchors(markdown_file: Path) -> set[str]:
    """The heading ids mkdocs gives a page (Python-Markdown's toc extension, mkdocs' default slugify)."""
    import markdown

    converter = markdown.Markdown(extensions=["toc", "tables", "fenced_code", "attr_list"])
    converter.convert(markdown_file.read_text())

    def walk(tokens):
        for token in tokens:
            yield token["id"]
            yield from walk(token["children"])
    return set(walk(converter.toc_tokens))


def test_readme_links_resolve():
    """Every relative link in README.md names a file that exists, and its #anchor a heading of that page."""
    targets = LINK.findall(README.read_text())
    assert any(t.startswith("docs/") for t in targets)
    broken = []
    for target in targets:
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (README.parent / path).resolve() if path else README
        if not file.exists():
            broken.append(f"{target}: no {file.relative_to(REPO) if file.is_relative_to(REPO) else file}")
        elif anchor and (file.suffix != ".md" or anchor not in _anchors(file)):
            broken.append(f"{target}: no heading #{anchor} in {path or 'README.md'}")
    assert not broken, "README.md links that do not resolve:\n" + "\n".join(broken)
