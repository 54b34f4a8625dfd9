"""The committed notebooks are exactly what notebooks/generate.py writes (reviewable source, no drift)."""

import subprocess
import sys

from groot_lib.workbench.workflow import NOTEBOOKS


def test_committed_notebooks_match_their_generator(tmp_path):
    subprocess.run([sys.executable, str(NOTEBOOKS / "generate.py"), str(tmp_path)], check=True)
    for name in ("producer.ipynb", "consumer.ipynb", "explore.ipynb", "investigate.ipynb"):
        assert (tmp_path / name).read_text() == (NOTEBOOKS / name).read_text(), (
            f"notebooks/{name} differs from its source: run `python notebooks/generate.py`")
