"""The simulation notebooks run top to bottom (executed, with small step counts), so they never rot."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
KERNEL = "python3"


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """The python3 kernel of this interpreter; installed for the user when missing (fresh machine)."""
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install

        install(user=True, kernel_name=KERNEL)
    return KERNEL


def test_there_are_notebooks_and_their_outputs_are_stripped():
    assert {p.name for p in NOTEBOOKS} >= {"01_exploration_settings.ipynb", "02_send_time.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, (
                    f"{path.name}: strip outputs"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, kernel_name, tmp_path, monkeypatch):
    monkeypatch.setenv("BANDITREC_NOTEBOOK_STEPS", "400")
    monkeypatch.setenv("BANDITREC_NOTEBOOK_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, kernel_name=kernel_name, timeout=300, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the plots should display inline"
    assert list((tmp_path / "out").rglob("comparison.png"))
