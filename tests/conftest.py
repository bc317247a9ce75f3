"""Shared fixtures: the bundled sample, and the CLI run in-process."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch
from hypothesis import settings

from convlens.cli import main
from convlens.cli._app import console, error_console
from convlens.images import sample_path

torch.set_num_threads(1)

# Property tests explore new random examples on every local run; CI (HYPOTHESIS_PROFILE=ci, set
# by .ci/run) replays the same ones each time, so a run on main is red only when the code is.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
"""Files tests leave for people to look at (screenshots, figures); ignored by git."""

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's chromium, which Playwright drives (its own browser downloads cannot work here)."""
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite the expected outputs in tests/golden/ from this run")


GOLDEN = Path(__file__).parent / "golden"
"""Expected printed outputs (tables, explanations), compared whole by the ``golden`` fixture."""


@pytest.fixture
def golden(request):
    """Compare text with ``tests/golden/<name>``; ``pytest --update-golden`` rewrites it."""

    def check(name: str, text: str) -> None:
        path = GOLDEN / name
        if request.config.getoption("--update-golden"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert path.is_file(), f"{path.name} is missing; run pytest --update-golden"
        assert text == path.read_text(encoding="utf-8"), (
            f"the output differs from tests/golden/{name}; if the change is meant, run "
            "pytest --update-golden and read the diff")

    return check


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run ``convlens ARGS...`` in-process inside ``tmp_path``; returns code, stdout, stderr."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "160")
    # rich reads COLUMNS when a console is made; the CLI's consoles exist already
    monkeypatch.setattr(console, "width", 160)
    monkeypatch.setattr(error_console, "width", 160)

    def invoke(*args: str) -> CliResult:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def chelsea() -> Path:
    """The bundled 451x300 RGB cat photo."""
    return sample_path("chelsea")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium for the module's tests (mark them ``browser`` and
    ``xdist_group("browser")`` so one worker runs them all)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
