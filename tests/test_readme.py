"""The README runs top to bottom (issue 13).

Every ```bash block of README.md is read in order and every line of it runs, as a new reader
would paste it, in one fresh folder, through bash with the venv's ``bin`` first on PATH, so
``convlens`` is the installed entry point of the venv running these tests. Each line must exit 0.

Nothing is changed silently: a README line this test does not run as written is either in
``SUBSTITUTIONS`` (the line it runs instead, and why) or in ``SKIPS`` (why it cannot run here),
and both tables are checked against the README, so an entry that no longer matches a line fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(sys.executable).parent
SAMPLES = ROOT / "src" / "convlens" / "samples"

SETUP = ("python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e . "
         "&& convlens run")
PHOTOS = ("mkdir -p photos && cp src/convlens/samples/*.png photos/   "
          "# photos to try (yours work the same)")
TRAIN = "convlens train                                    # scikit-learn's 8x8 digits, bundled"

# README line -> (the line this test runs instead, why)
SUBSTITUTIONS: dict[str, tuple[str, str]] = {
    SETUP: ("convlens run",
            "making a venv and installing need the network; these tests already run in the "
            "installed venv, so only the line's own command, `convlens run`, runs"),
    PHOTOS: (f"mkdir -p photos && cp {SAMPLES}/*.png photos/",
             "the reader runs it in the clone, this test in a fresh folder: the same samples "
             "by their absolute path"),
    TRAIN: ("convlens train --epochs 1",
            "the commands after it need a model file, not a good one: the same run, one epoch "
            "instead of 30 (seconds, not most of a minute)"),
}

_OWN_DATA = "a placeholder for the reader's own data or model (the README says so)"
# README line (its command, comments included) -> why it cannot run here
SKIPS: dict[str, str] = {
    "bash scripts/test.sh": "runs the whole test suite, this test included",
    "convlens train --data path/to/folder --model tinyvgg --epochs 20 --out runs/pets": _OWN_DATA,
    "convlens train --data mnist:path/to/idx-files --model lenet": _OWN_DATA,
    "convlens train --data cifar10:path/to/cifar-10-batches-py --model resnet9 --amp":
        _OWN_DATA + "; --amp is for a GPU",
    "torchrun --nproc-per-node 4 -m convlens train --data cifar10:... --model resnet9":
        "four processes under torchrun, on " + _OWN_DATA,
    "convlens evaluate runs/pets/model.safetensors --data path/to/test-folder": _OWN_DATA,
    "convlens predict runs/pets/model.safetensors cat1.jpg cat2.jpg --top-k 3": _OWN_DATA,
    "convlens inspect model.pt dog.jpg --all-conv --top 8 --trust-code  # TorchScript is code":
        _OWN_DATA,
    "convlens inspect mypkg.nets:make_net dog.jpg --weights net.safetensors --input-size 64 "
    "--trust-code": _OWN_DATA,
    "convlens saliency runs/pets/model.safetensors dog.jpg --class dog --method gradcam":
        _OWN_DATA,
    "convlens serve            # http://127.0.0.1:8765/":
        "serves until stopped (tests/test_serve_*.py drive the page)",
    "convlens serve --model runs/digits-tinyvgg/model.safetensors   # or any model `convlens "
    "inspect` opens": "serves until stopped (tests/test_serve_*.py drive the page)",
}


def bash_lines(text: str) -> list[str]:
    """Every line of every ```bash block of ``text``, in order (blank lines left out).

    >>> bash_lines("a\\n```bash\\nconvlens run\\n\\nls\\n```\\n```python\\nx\\n```\\n")
    ['convlens run', 'ls']
    """
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    return [line.rstrip() for block in blocks for line in block.splitlines() if line.strip()]


def test_bash_lines_finds_every_block():
    lines = bash_lines(README.read_text(encoding="utf-8"))
    assert SETUP in lines and "convlens kernels" in " ".join(lines)
    for line in [*SUBSTITUTIONS, *SKIPS]:  # a table entry that matches no line is stale
        assert line in lines, f"not a README line any more: {line!r}"


@pytest.mark.slow
def test_the_readme_runs_in_order(tmp_path: Path):
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "MPLBACKEND": "Agg", "COLUMNS": "100"}
    convlens = shutil.which("convlens", path=env["PATH"])
    assert convlens is not None and Path(convlens).parent == VENV_BIN
    ran = []
    for line in bash_lines(README.read_text(encoding="utf-8")):
        if line in SKIPS:
            continue
        command = SUBSTITUTIONS[line][0] if line in SUBSTITUTIONS else line
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=300)
        assert done.returncode == 0, (
            f"README line failed (exit {done.returncode}): {line}\n"
            f"ran: {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        ran.append(command)
    assert sum(command.startswith("convlens ") for command in ran) >= 15
    # what the README says the commands leave behind is there
    assert (tmp_path / "convlens-out" / "chelsea" / "winners.png").is_file()
    assert (tmp_path / "runs" / "digits-tinyvgg" / "model.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "photo-maps").iterdir()) == [
        "camera", "chelsea", "coffee"]
