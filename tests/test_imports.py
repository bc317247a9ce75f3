"""Commands that need no tensors load no tensor library: no torch, numba or matplotlib.

Each command runs in a fresh interpreter (``convlens.cli.main`` in a subprocess), which then
reports the modules it imported. Nothing here is timed: timings belong in ``bench/``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import convlens

HEAVY = ("torch", "numba", "matplotlib")

_PROBE = """
import json, sys
from convlens.cli import main
code = main(json.loads(sys.argv[1]))
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(json.loads(sys.argv[2])))
print("\\n" + json.dumps({"code": code, "heavy": heavy}))
"""


def _run(args: list[str]) -> tuple[dict, str]:
    """Run ``convlens ARGS`` in a fresh interpreter: its report and its whole output."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
                          capture_output=True, text=True, timeout=120,
                          env={**_clean_env(), "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


def _clean_env() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if key != "MPLBACKEND"}


@pytest.mark.parametrize("args", [
    ["--help"],
    ["--version"],
    ["kernels"],
    ["kernels", "sobel*"],
    ["size", "--input", "28", "--kernel", "3"],
    ["size", "--input", "224", "--layers", "conv3 p1, pool2, conv3 s2 p1 d2, pool3 s2 ceil"],
    ["run", "--help"],
    ["explain", "--patch", "88 126 145; 86 125 142; 85 124 141", "--kernel",
     "1 0 1; 1 1 0; 0 0 0"],
    ["explain", "--patch", "1 2; 3 4 | 5 6; 7 8 | 9 10; 11 12", "--kernel", "1 -1; 0 2",
     "--activation", "sigmoid", "--flip", "--json"],
], ids=lambda args: " ".join(args)[:40])
def test_commands_without_tensors_import_no_tensor_library(args):
    report, output = _run(args)
    assert report["code"] == 0, output
    assert report["heavy"] == [], f"convlens {' '.join(args)} imported {report['heavy']}"


def test_version_prints_the_version_and_imports_no_command():
    report, output = _run(["--version"])
    assert f"convlens {convlens.__version__}" in output
    assert report == {"code": 0, "heavy": []}


def test_kernels_text_still_prints_whole_number_weights():
    _, output = _run(["kernels", "gaussian*"])
    assert "1/16 x" in output


def test_explaining_numpy_values_loads_no_tensor_library():
    """The library too: a pixel and a pooled cell worked out on NumPy values import no torch."""
    code = """
import json, sys
import numpy as np
from convlens.config import LayerConfig
from convlens.explain import explain_pixel, explain_pooled
from convlens.kernels import kernel_array, parse_kernels
image = np.random.default_rng(0).random((1, 9, 10), dtype=np.float32)
weights = kernel_array(parse_kernels(["sobel-h", "laplacian"]), 1)
for activation in ("relu", "leaky-relu", "tanh", "sigmoid", "abs", "none"):
    config = LayerConfig(padding=1, pool=2, activation=activation)
    explain_pixel(image, weights, config, 1, 4, 5, flip=True).to_dict()
    explain_pooled(image, weights, config, 0, 2, 3).to_dict()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} & set(sys.argv[1:]))))
"""
    done = subprocess.run([sys.executable, "-c", code, *HEAVY], capture_output=True, text=True,
                          timeout=120, env=_clean_env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(("args", "unneeded"), [
    (["--help"], ["numpy", "pydantic", "PIL"]),
    (["kernels"], ["pydantic", "PIL"]),
    (["size", "--input", "28", "--kernel", "3", "--stride", "2"], ["pydantic", "PIL"]),
    (["explain", "--patch", "1,2,3;4,5,6;7,8,9"], ["pydantic", "PIL"]),
], ids=lambda value: " ".join(value)[:30])
def test_help_and_arithmetic_skip_what_they_do_not_use(args, unneeded):
    """Past the tensor libraries: ``--help`` needs no NumPy, and typer's Pydantic validators
    (a tenth of a second to import) are not built for plain text and whole numbers."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(unneeded)],
                          capture_output=True, text=True, timeout=120,
                          env={**_clean_env(), "COLUMNS": "100"})
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, done.stdout + done.stderr


def test_run_on_the_sample_imports_no_torch_or_numba(tmp_path):
    """``convlens run`` with its defaults (figures, report.html, stages.npz, run.json) computes,
    draws, explains and writes without torch, torchvision or numba: the NumPy backend does the
    layer, the image loads as an array, run.json reads torch's version from package metadata."""
    out = tmp_path / "out"
    report, output = _run_heavy(["run", "--out", str(out)], ("torch", "numba", "torchvision"))
    assert report["code"] == 0, output
    assert report["heavy"] == [], f"convlens run imported {report['heavy']}"
    assert {"stages.npz", "report.html", "run.json", "conv.png"} <= {
        path.name for path in out.iterdir()}
    settings = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert settings["device"] == "cpu" and settings["torch_version"]


def _run_heavy(args: list[str], heavy: tuple[str, ...]) -> tuple[dict, str]:
    """:func:`_run` watching for ``heavy`` instead of :data:`HEAVY` (a run draws with
    matplotlib)."""
    done = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(heavy)],
                          capture_output=True, text=True, timeout=300,
                          env={**_clean_env(), "COLUMNS": "100", "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stdout + done.stderr


@pytest.mark.parametrize("args", [
    ["run", "--winners", "--explain", "120,45"],
    ["explain", "--at", "120,45"],
])
def test_winners_and_explained_pixels_of_a_photo_import_no_torch(tmp_path, args):
    """The teaching extras of a run (winners.png, explain.json/png) and ``convlens explain
    IMAGE --at`` read the stages as NumPy arrays: still no torch, torchvision or numba."""
    out = ["--out", str(tmp_path / "out")] if args[0] == "run" else []
    report, output = _run_heavy([*args, *out], ("torch", "numba", "torchvision"))
    assert report["code"] == 0, output
    assert report["heavy"] == [], f"convlens {' '.join(args)} imported {report['heavy']}"
    if args[0] == "run":
        assert {"winners.png", "explain.json", "explain.png"} <= {
            path.name for path in (tmp_path / "out").iterdir()}
