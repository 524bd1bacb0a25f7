"""Every notebook in notebooks/ runs top to bottom, and the quickstart computes what it claims."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def _stdout(cell) -> str:
    return "".join(
        out.get("text", "")
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream" and out.get("name") == "stdout"
    )


def _execute(path: Path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},  # cwd of the kernel
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    return nb


_executed: dict[Path, object] = {}


def executed(path: Path):
    """Execute each notebook once per session (the checks below share the result)."""
    if path not in _executed:
        _executed[path] = _execute(path)
    return _executed[path]


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{path.name} cell {i}: clear the outputs before committing"
            assert cell.execution_count is None, f"{path.name} cell {i}: execution count set"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_error(path):
    nb = executed(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert not errors, f"{path.name} cell {i}: {errors[0].get('ename')}"
        stderr = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stderr")
        assert "Traceback" not in stderr, f"{path.name} cell {i} printed a traceback:\n{stderr}"


@pytest.mark.slow
def test_quickstart_results():
    nb = executed(NOTEBOOKS_DIR / "01_quickstart.ipynb")
    text = "\n".join(_stdout(c) for c in nb.cells if c.cell_type == "code")

    # the run finished and the store opened complete
    assert re.search(r"^complete: \d+ steps", text, re.M), text
    assert "complete: True" in text

    # the pinwheel density of the map, per Lambda^2: near pi for a thin-ring random map
    m = re.search(r"pinwheel density: ([0-9.]+) per Lambda\^2", text)
    assert m, f"no pinwheel density printed:\n{text}"
    density = float(m.group(1))
    assert 2.0 < density < 4.5, density

    # Lambda with |z| is close to the generating wavelength (0.8 mm); without |z| it is short
    lam = float(re.search(r"column spacing Lambda = ([0-9.]+) mm", text).group(1))
    assert abs(lam - 0.8) < 0.08, lam
    ratio = float(re.search(r"mm, ([0-9.]+) of the estimate with \|z\|", text).group(1))
    assert 0.7 < ratio < 0.88, ratio

    # the orientation map, the snapshot and the animation were displayed
    mimes = [set(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("image/png" in m for m in mimes) >= 2, "expected the snapshot and the map figures"
    assert any("image/gif" in m for m in mimes), "expected the animation as a GIF"
