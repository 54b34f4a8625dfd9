"""mkdocs hooks (``mkdocs.yml`` ``hooks:``): the settings page's knob table, generated from ``settings.KNOBS``.

Why: a table of knobs written by hand drifts from the code (a new knob, a changed default). docs/settings.md holds
the placeholder ``<!-- knobs-table -->``; on build it becomes one row per knob from ``makehelp.knob_rows``, the
rows ``make help`` prints. A page that lost its placeholder fails the build rather than silently showing no table.
stdlib only at import (mkdocs loads this file by path; its error class is imported when needed).
"""
from __future__ import annotations

import html

from groot_lib.workbench.makehelp import knob_rows

PLACEHOLDER = "<!-- knobs-table -->"
PAGE = "settings.md"
COLUMNS = ("knob", "make", "flag", "environment", "default", "what it does")


def _text(value: str) -> str:
    """Plain text safe in a Markdown table cell: HTML escaped, pipes and emphasis characters escaped."""
    escaped = html.escape(value, quote=False)
    for char in "\\|*_[]`":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def _code(value: str, empty: str = "") -> str:
    return f"`{value}`" if value else empty


def knobs_table() -> str:
    """The Markdown table of every knob: name, make variable, flag, environment variable, default, help."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in knob_rows():
        cells = (_code(row["name"]), _code(row["make"]), _code(row["flag"]), _code(row["env"]),
                 _code(row["default"], "empty"), _text(row["help"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace the placeholder on the settings page with the generated table."""
    if page.file.src_uri != PAGE:
        return markdown
    if PLACEHOLDER not in markdown:
        from mkdocs.exceptions import PluginError  # only ever called by mkdocs

        raise PluginError(f"docs/{PAGE} lost its placeholder {PLACEHOLDER}: the knob table has nowhere to go")
    return markdown.replace(PLACEHOLDER, knobs_table())
