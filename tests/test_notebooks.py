"""The example notebooks run top to bottom on the CPU, show their figures once, match their
generator and carry no outputs in git."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
KERNEL_NAME = "convlens-test-venv"

BUDGET_SECONDS = {"tutorial.ipynb": 110.0, "own-model.ipynb": 70.0}
"""Wall-clock limit per notebook on a 2-core CPU; together 3 minutes."""


def _generator():
    path = EXAMPLES / "build_notebooks.py"
    spec = importlib.util.spec_from_file_location("build_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec that starts this interpreter (the venv's Python), whatever other python3
    kernels the machine has registered."""
    folder = tmp_path_factory.mktemp("kernels")
    spec = folder / KERNEL_NAME
    spec.mkdir()
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "convlens test (venv)",
        "language": "python",
    }))
    return folder


def execute(name: str, kernel_dir: Path, cwd: Path) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(EXAMPLES / name, as_version=4)
    manager = AsyncKernelManager(kernel_name=KERNEL_NAME,
                                 kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernel_dir)]))
    client = NotebookClient(notebook, km=manager, timeout=150, allow_errors=False,
                            resources={"metadata": {"path": str(cwd)}})
    # one thread per kernel: the suite runs two workers on two cores, and tiny models train
    # many times slower when threads spin against each other
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    client.execute(env=env)
    return notebook, time.perf_counter() - started


def _images(cell) -> list[str]:
    return [output["data"]["image/png"] for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {})]


def _check_outputs(notebook: nbformat.NotebookNode) -> None:
    """Ran with no errors; every cell that ends in a figure shows it once; nothing twice."""
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        assert not [o for o in outputs if o["output_type"] == "error"], f"cell {index} failed"
        images = _images(cell)
        digests = [hashlib.sha256(image.encode()).hexdigest() for image in images]
        assert len(digests) == len(set(digests)), f"cell {index} shows a figure twice"
        texts = [o.get("text", "") for o in outputs if o["output_type"] == "stream"]
        results = [o["data"].get("text/plain", "") for o in outputs
                   if o["output_type"] == "execute_result"]
        for result in results:
            assert not any(result.strip() and result.strip() in text for text in texts), (
                f"cell {index} prints what it also returns")
        last_line = cell.source.strip().splitlines()[-1]
        if last_line.startswith(("convlens.plot_", "plot_", "stages", "HTML(", "ShowImage(",
                                 "convlens.compute_stages(", "explain_activation(")):
            kinds = {key for o in outputs for key in o.get("data", {})}
            assert kinds & {"image/png", "image/gif", "text/html"}, (
                f"cell {index} ends in {last_line!r} but nothing was drawn")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUDGET_SECONDS))
def test_notebook_runs_top_to_bottom(name, kernel_dir, tmp_path):
    notebook, seconds = execute(name, kernel_dir, tmp_path)
    _check_outputs(notebook)
    assert seconds < BUDGET_SECONDS[name], f"{name} took {seconds:.0f} s"


@pytest.mark.parametrize("name", sorted(BUDGET_SECONDS))
def test_committed_notebooks_have_no_outputs_and_match_the_generator(name):
    path = EXAMPLES / name
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    generator = _generator()
    expected = generator.content(generator.render(generator.NOTEBOOKS[name]))
    assert generator.content(path.read_text(encoding="utf-8")) == expected, (
        f"{name} differs from examples/build_notebooks.py; run python examples/build_notebooks.py")


def test_notebooks_use_only_bundled_data_and_the_installed_package():
    for name in BUDGET_SECONDS:
        cells = nbformat.read(EXAMPLES / name, as_version=4).cells
        code = "\n".join(cell.source for cell in cells if cell.cell_type == "code")
        assert "sys.path" not in code and "../src" not in code
        assert "http://" not in code and "https://" not in code
        assert "download=True" not in code and "files.upload" not in code
