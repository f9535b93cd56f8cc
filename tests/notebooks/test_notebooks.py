"""The notebooks run top to bottom on the project's own kernel (small, fast), and are kept without outputs."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))


def test_there_are_notebooks():
    assert "dream.ipynb" in ALL


@pytest.mark.parametrize("name", ALL)
def test_notebook_is_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"


def run_notebook(name: str, tmp_path: Path, monkeypatch, **settings: str) -> nbformat.NotebookNode:
    """Execute a notebook in a fresh kernel of this interpreter, in ``tmp_path``; fails on the first failing cell."""
    # The kernel is this interpreter: its kernelspec runs `python`, so this venv comes first on PATH.
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    monkeypatch.setenv("GLOG_minloglevel", "2")
    for key, value in settings.items():
        monkeypatch.setenv(f"DREAM_NOTEBOOK_{key}", value)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as e:
        pytest.fail(f"{name}: a cell failed:\n{str(e)[-3000:]}")
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def images_shown(nb: nbformat.NotebookNode) -> int:
    return sum("image/jpeg" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def test_dream_notebook_runs_and_its_parity_cell_holds(googlenet_model, tmp_path, monkeypatch):
    proto, weights = googlenet_model
    nb = run_notebook("dream.ipynb", tmp_path, monkeypatch, MODEL=f"{proto}:{weights}", SIZE="160", ITERS="2",
                      OCTAVES="2", FRAMES="2")
    text = outputs_text(nb)
    assert f"dreaming with bvlc_googlenet: {proto}" in text
    # The parity cell asserts equality itself; these lines are printed only after its asserts passed.
    assert "inception_4c/output, L2: bit-identical" in text
    assert "inception_3b/5x5_reduce, L2: bit-identical" in text
    assert "inception_4c/output, guided: bit-identical" in text
    assert "inception_4c/output then inception_3b/5x5_reduce on one net: bit-identical to the original sequence" in text
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["0000.jpg", "0001.jpg"]
    # The photo, the last zoom frame, and each of the three dreams (its steps clear one another).
    assert images_shown(nb) >= 5


def test_beyond_notebook_runs(googlenet_model, tmp_path, monkeypatch):
    proto, weights = googlenet_model
    nb = run_notebook("beyond.ipynb", tmp_path, monkeypatch, MODEL=f"{proto}:{weights}", SIZE="160", ITERS="2",
                      OCTAVES="2")
    text = outputs_text(nb)
    assert "L2('inception_4c/output')" in text and "forward+backward passes per octave" in text
    assert "class 0 at loss3/classifier, 224x224: score" in text and "tiled: True" in text
    assert images_shown(nb) >= 4  # ascent | L-BFGS, the composed dreams, the class image, the tiled photo
