"""Debian's chromium, headless, as the tests drive it: offline, a fresh profile, and a probe that reads the
rendered layout (element boxes in page pixels, the page's scroll width) out of the DOM it dumps."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")

PROBE = """<script>
(function () {
  var out = {width: innerWidth, scrollWidth: document.documentElement.scrollWidth, boxes: {}, overflowing: []};
  SELECTORS.forEach(function (s) {
    out.boxes[s] = Array.prototype.map.call(document.querySelectorAll(s), function (e) {
      var r = e.getBoundingClientRect(); return {top: r.top + scrollY, bottom: r.bottom + scrollY, right: r.right};
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('body *'), function (e) {
    var r = e.getBoundingClientRect();
    if (r.width && r.right > innerWidth + 1 && e.closest('details:not([open])') === null)
      out.overflowing.push(e.tagName + '.' + e.className + ' right ' + Math.round(r.right));
  });
  var p = document.createElement('pre'); p.id = 'layout-probe'; p.textContent = JSON.stringify(out);
  document.body.appendChild(p);
})();
</script>"""


def executable() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("Debian's chromium is not installed; `make test` installs it (apt-get install chromium)")
    return found


def layout(page: Path, selectors: list[str], *, width: int = 1400, height: int = 900) -> dict:
    """Render a copy of ``page`` at ``width`` x ``height`` and return {"width", "scrollWidth", "boxes": {selector:
    [{top, bottom, right}]}, "overflowing": [elements wider than the window]}, in page pixels."""
    probe = page.with_name(f".layout-probe-{page.name}")
    probe.write_text(page.read_text() + PROBE.replace("SELECTORS", json.dumps(selectors)))
    try:
        proc = subprocess.run([executable(), *FLAGS, f"--user-data-dir={page.parent / '.chromium-layout'}",
                               "--host-resolver-rules=MAP * ~NOTFOUND", f"--window-size={width},{height}",
                               "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink(missing_ok=True)
    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"chromium rendered no probe ({proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                      .replace("&gt;", ">"))
