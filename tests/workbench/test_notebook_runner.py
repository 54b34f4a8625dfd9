"""Real papermill runs in the real groot-lerobot kernel: pass, cell error, dead kernel, timeout."""
from __future__ import annotations

import nbformat
import pytest

from groot_lib.core.errors import KernelError, ParityError
from groot_lib.workbench.notebook_runner import NotebookExecutionError, run_notebook

pytestmark = pytest.mark.integration
KERNEL = "groot-lerobot"


def _nb(path, *cells, parameters=None):
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    nbformat.write(nb, str(path))
    return path


def _outputs(path):
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") + o.get("evalue", "") for c in nb.cells for o in c.get("outputs", []))


def test_passing_notebook_with_parameters(tmp_path):
    src = _nb(tmp_path / "ok.ipynb", "import os, sys\nprint(x * 2, sys.version_info[:2], os.getcwd(), os.environ['VIRTUAL_ENV'])",
              parameters="x = 1")
    out = run_notebook(src, tmp_path / "out" / "ok.ipynb", kernel_name=KERNEL, parameters={"x": 21})
    text = _outputs(out)
    assert "42 (3, 12)" in text and str(tmp_path) in text  # cwd defaults to the notebook's folder
    assert text.strip().endswith(".envs/lerobot")  # kernel.json's env block reached the kernel
    assert [p.name for p in out.parent.iterdir()] == ["ok.ipynb"]  # no temp files left behind


def test_cell_error_names_cell_and_exception(tmp_path):
    src = _nb(tmp_path / "bad.ipynb", "a = 1", "b = 2\nraise ValueError('boom')", "print('never')")
    out = tmp_path / "bad.out.ipynb"
    with pytest.raises(NotebookExecutionError) as exc:
        run_notebook(src, out, kernel_name=KERNEL)
    msg, err = str(exc.value), exc.value
    assert "bad.ipynb" in msg and "at cell 1" in msg and "In [2]" in msg
    assert "raise ValueError('boom')" in msg and "ValueError: boom" in msg
    assert "Traceback" not in msg and str(out) in msg
    assert (err.cell_index, err.execution_count, err.ename) == (1, 2, "ValueError")
    assert out.is_file() and "boom" in _outputs(out) and "never" not in _outputs(out)


def test_kernel_death_is_reported(tmp_path):
    src = _nb(tmp_path / "die.ipynb", "x = 1", "import os\nos._exit(1)", "print('never')")
    out = tmp_path / "die.out.ipynb"
    with pytest.raises(NotebookExecutionError) as exc:
        run_notebook(src, out, kernel_name=KERNEL, timeout=120)
    msg = str(exc.value)
    assert "kernel died" in msg and "at cell 1" in msg and "os._exit(1)" in msg
    assert out.is_file()


def test_cell_timeout_is_reported(tmp_path):
    src = _nb(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)")
    with pytest.raises(NotebookExecutionError, match=r"timed out after 3 s at cell 0"):
        run_notebook(src, tmp_path / "slow.out.ipynb", kernel_name=KERNEL, timeout=3)
    assert (tmp_path / "slow.out.ipynb").is_file()


def test_timeout_from_notebook_metadata_and_cell_override(tmp_path):
    src = _nb(tmp_path / "slow.ipynb", "x = 1", "import time\ntime.sleep(60)")
    nb = nbformat.read(str(src), as_version=4)
    nb.metadata["execution"] = {"timeout": 600}
    nb.cells[1].metadata["execution"] = {"timeout": 2}  # nbmake's per-cell override
    nbformat.write(nb, str(src))
    with pytest.raises(NotebookExecutionError, match=r"timed out after 2 s at cell 1"):
        run_notebook(src, tmp_path / "slow.out.ipynb", kernel_name=KERNEL)


def test_unknown_parameter_is_refused_before_any_kernel(tmp_path):
    src = _nb(tmp_path / "p.ipynb", "print(x)", parameters="x = 1\ny = 2")
    with pytest.raises(ParityError, match=r"unknown parameter\(s\) \['z'\]; its parameters cell declares x, y"):
        run_notebook(src, tmp_path / "p.out.ipynb", kernel_name=KERNEL, parameters={"x": 3, "z": 4})
    assert not (tmp_path / "p.out.ipynb").exists()


def test_missing_kernel(tmp_path):
    src = _nb(tmp_path / "x.ipynb", "1")
    with pytest.raises(KernelError, match="kernel 'no-such-kernel' is not installed.*groot-original"):
        run_notebook(src, tmp_path / "x.out.ipynb", kernel_name="no-such-kernel")
