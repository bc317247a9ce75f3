"""The printed tables of `layers`, `kernels`, `inspect`, `run` and `size`, compared whole with
the files in tests/golden/ (``pytest --update-golden`` rewrites them; read the diff before
committing).

Each command runs in-process through the ``cli`` fixture at a fixed terminal width (80 and 120
columns), so the files show what a learner sees in a narrow and a wide terminal. A golden file
holds stdout, then the notes, hints and errors written to stderr after a ``--- stderr ---``
line. The only numbers that change from run to run, ``run``'s timing, are masked explicitly
(:func:`mask_timing`); everything else is fixed by the inputs.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch

from convlens import bundled_model_path
from convlens.cli._app import console, error_console
from small_nets import ScriptedNet

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")

TIMING = re.compile(r" in \d+(?:\.\d+)? s$", re.MULTILINE)


def mask_timing(text: str) -> str:
    """``wrote 8 files to out/ in 11.33 s`` -> ``... in <seconds> s``: the one number of a run's
    output that depends on the machine."""
    return TIMING.sub(" in <seconds> s", text)


@pytest.fixture
def width(monkeypatch):
    """Set the terminal width the CLI's consoles print to (stdout and stderr)."""

    def set_width(columns: int) -> None:
        monkeypatch.setenv("COLUMNS", str(columns))
        monkeypatch.setattr(console, "width", columns)
        monkeypatch.setattr(error_console, "width", columns)

    return set_width


def printed(result) -> str:
    """What the terminal shows: stdout, then stderr (notes, hints, errors) after a marker."""
    return result.out + (f"--- stderr ---\n{result.err}" if result.err else "")


def _fits(text: str, columns: int) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > columns]
    assert not too_wide, f"lines wider than {columns} columns: {too_wide}"


@pytest.fixture
def scripted(tmp_path) -> str:
    """``net.pt`` (TorchScript of :class:`ScriptedNet`) in the CLI's working folder."""
    torch.manual_seed(0)
    torch.jit.script(ScriptedNet().eval()).save(str(tmp_path / "net.pt"))
    return "net.pt"


# --------------------------------------------------------------------------- layers

LAYERS = {
    "tinyvgg": (0, ["tinyvgg", "--input-size", "64"]),
    "lenet": (0, ["lenet", "--input-size", "32x48"]),
    # ONet-like (tests/several_outputs.py) at a size it cannot take: the table up to the
    # failing layer, the error and the hint with the size to use
    "onet-failing": (2, ["several_outputs:build", "--trust-code", "--input-size", "64"]),
}


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("model", list(LAYERS))
def test_layer_tables_match_the_golden_files(cli, golden, width, model, columns):
    code, args = LAYERS[model]
    width(columns)
    result = cli("layers", *args)
    assert result.code == code, result.err
    _fits(result.out, columns)
    golden(f"layers/{model}-{columns}.txt", printed(result))


@pytest.mark.parametrize(("name", "columns", "size", "code"), [
    ("torchscript-80.txt", 80, "32x32", 0),
    ("torchscript-120.txt", 120, "32x32", 0),
    ("torchscript-failing-120.txt", 120, "40x40", 2),
])
def test_torchscript_layer_tables_match_the_golden_files(cli, golden, width, scripted, name,
                                                         columns, size, code):
    width(columns)
    result = cli("layers", scripted, "--trust-code", "--input-size", size)
    assert result.code == code, result.err
    _fits(result.out, columns)
    golden(f"layers/{name}", printed(result))


# --------------------------------------------------------------------------- inspect

def test_the_inspect_tables_of_the_bundled_model_match_the_golden_file(cli, golden, width,
                                                                       tmp_path):
    """The bundled digits CNN (fixed weights) on the bundled photo: predictions, the most
    active channels and the filters nearest the built-in kernels (narrow tables: 80 columns
    print them as 120 would). The model is copied next to the CLI so the printed path is the
    same everywhere."""
    bundled = bundled_model_path().parent
    shutil.copytree(bundled, tmp_path / bundled.name)
    width(80)
    result = cli("inspect", bundled.name, "--top", "4", "--out", "seen", "--device", "cpu")
    assert result.code == 0, result.err
    _fits(result.out, 80)
    golden("inspect-digits-80.txt", printed(result))


# --------------------------------------------------------------------------- kernels

@pytest.mark.parametrize("columns", [80, 120])
def test_the_kernel_listing_matches_the_golden_file(cli, golden, width, columns):
    width(columns)
    result = cli("kernels")
    assert result.code == 0, result.err
    _fits(result.out, columns)
    golden(f"kernels-{columns}.txt", printed(result))


# --------------------------------------------------------------------------- run

@pytest.mark.parametrize(("name", "columns", "args"), [
    ("run-sample-80.txt", 80, []),  # the tutorial's first command: the photo, three kernels
    ("run-sample-avg-120.txt", 120, ["--kernels", "sobel-h,laplacian", "--padding", "same",
                                     "--stride", "2", "--activation", "tanh", "--pool", "3",
                                     "--pool-type", "avg", "--no-report"]),
])
def test_the_run_stage_table_matches_the_golden_file(cli, golden, width, name, columns, args):
    width(columns)
    result = cli("run", "--device", "cpu", "--out", "out", *args)
    assert result.code == 0, result.err
    assert TIMING.search(result.out), "run no longer prints its time: update mask_timing"
    _fits(result.out, columns)
    golden(name, mask_timing(printed(result)))


def test_the_timing_mask_hides_only_the_seconds():
    text = "wrote 8 files to out/ in 11.33 s\n 1 │ conv │ 3 s\nin 2 s"
    assert mask_timing(text) == "wrote 8 files to out/ in <seconds> s\n 1 │ conv │ 3 s\nin 2 s"


# --------------------------------------------------------------------------- size

@pytest.mark.parametrize(("name", "columns", "code", "args"), [
    ("size-tutorial-120.txt", 120, 0, ["--input", "5", "--kernel", "3"]),
    ("size-conv-pool-80.txt", 80, 0, ["--input", "7", "--kernel", "5", "--stride", "2",
                                      "--pool", "2"]),
    ("size-chain-120.txt", 120, 0, ["--input", "32x48", "--layers",
                                    "conv5, maxpool2, conv3x5 p1 d2, avgpool3 s2 ceil, conv3 "
                                    "same s2"]),
    ("size-no-output-80.txt", 80, 2, ["--input", "4", "--layers", "conv3, conv5"]),
])
def test_size_tables_match_the_golden_files(cli, golden, width, name, columns, code, args):
    width(columns)
    result = cli("size", *args)
    assert result.code == code, result.err
    _fits(result.out, columns)
    golden(name, printed(result))


def test_a_dilated_rectangular_kernel_names_the_span_of_each_axis():
    """Bug fixed: ``conv5x3 d2`` printed ``(F = 2×(3-1)+1 = 5), (F = 2×(5-1)+1 = 9)``, the spans
    sorted by size and neither axis named; now rows first, each named."""
    from convlens.explain import chain_parts
    from convlens.sizes import size_chain

    table = chain_parts(size_chain(32, "conv5x3 d2, conv3 d3"))[0]
    assert table.rows[0][1] == "conv5x3 d2\n(F = 2×(5-1)+1 = 9 rows, 2×(3-1)+1 = 5 cols)"
    assert table.rows[-1][1] == "conv3 d3\n(F = 3×(3-1)+1 = 7)"


@pytest.mark.parametrize("size", ["32x32", "40x40"])
def test_the_torchscript_table_prints_as_the_eager_one(cli, width, scripted, size):
    """The same network, run eagerly (a factory) and as TorchScript, prints the same table below
    its model line. Bug fixed: at a size it cannot take, the TorchScript table gave the failing
    Linear layer a receptive field ('40x40 whole input'); the eager one (the layer has no
    output) leaves it blank."""
    width(120)
    eager = cli("layers", "small_nets:ScriptedNet", "--trust-code", "--input-size", size)
    script = cli("layers", scripted, "--trust-code", "--input-size", size)
    assert eager.code == script.code == (0 if size == "32x32" else 2), (eager.err, script.err)
    assert eager.out.splitlines()[1:] == script.out.splitlines()[1:]
    rows = [json.loads(cli("layers", spec, "--trust-code", "--input-size", size, "--json").out)
            for spec in ("small_nets:ScriptedNet", scripted)]
    assert rows[0]["layers"] == rows[1]["layers"]
