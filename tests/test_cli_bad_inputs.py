"""The CLI's promise on bad input, as one table: every row is a hostile or careless command line.

Each row gives the arguments, the files it needs (made in a fresh folder by ``setup``), the exit
code, and words the one-line error must hold. For every row the test also checks that no
traceback was printed, that the error is one line, and, for a refused command (exit 2), that
nothing was left behind: the folder holds exactly what ``setup`` made. Add a row whenever a bad
input is fixed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Bad:
    """One bad command line: ``args`` (``{sample}`` is the bundled cat photo), the exit ``code``
    and a regular expression ``words`` the error must match; ``setup`` makes input files in the
    working folder first."""

    id: str
    args: tuple[str, ...]
    code: int
    words: str
    setup: Callable[[Path], None] | None = None


def build_plain_pt2(path: Path) -> Path:
    """A small, honest torch.export program (no pickled parts)."""
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.rand(1, 1, 8, 8),)), str(path))
    return path


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# --------------------------------------------------------------------------- model files and trust
def _hostile(kind: str) -> Callable[[Path], None]:
    """Setup writing the hostile model file of ``kind``; loading it unguarded would create
    ``marker``, a new file the table's checker would see."""
    from hostile_models import build_hostile

    return lambda folder: build_hostile(kind, folder, folder / "marker") and None


_HOSTILE_FILES = {"pickle": "evil.pt", "torchscript": "evil-script.pt",
                  "pt2-pickled-weight": "evil-weight.pt2", "pt2-pickled-inputs": "evil-inputs.pt2"}
_MODEL_ENTRIES = {"layers": ("layers", "{model}", "--input-size", "8"),
                  "inspect": ("inspect", "{model}", "{sample}", "--input-size", "8"),
                  "saliency": ("saliency", "{model}", "{sample}", "--input-size", "8"),
                  "serve": ("serve", "--model", "{model}", "--port", "0")}
TRUST_CASES: list[Bad] = [
    *(Bad(f"{entry}-refuses-{kind}",
          tuple(arg.replace("{model}", name) for arg in args), 2,
          r"(runs code|unpickling|is code).*--trust-code", _hostile(kind))
      for kind, name in _HOSTILE_FILES.items() for entry, args in _MODEL_ENTRIES.items()),
    Bad("pickle-as-weights", ("layers", "tinyvgg", "--weights", "evil.pt"), 2,
        r"evil\.pt holds pickled Python objects, not plain weights", _hostile("pickle")),
    Bad("factory-needs-trust", ("layers", "os:getcwd"), 2,
        r"os:getcwd names Python code to import and call.*--trust-code"),
    Bad("factory-sys-exit", ("layers", "sys:exit", "--trust-code"), 2,
        r"sys:exit is a builtin_function_or_method, not a model factory"),
    Bad("factory-os-abort", ("layers", "os:abort", "--trust-code"), 2,
        r"os:abort is a builtin_function_or_method, not a model factory"),
    Bad("factory-not-a-module-class", ("layers", "pathlib:Path", "--trust-code"), 2,
        r"pathlib:Path is the class Path, not a torch nn.Module class"),
    Bad("factory-raises-system-exit", ("layers", "quits:build", "--trust-code"), 2,
        r"quits:build\(\) failed: SystemExit",
        lambda folder: (folder / "quits.py").write_text(
            "import sys\n\ndef build():\n    sys.exit(3)\n") and None),
    Bad("factory-returns-a-list", ("layers", "lists:build", "--trust-code"), 2,
        r"lists:build\(\) returned a list, not a torch nn.Module",
        lambda folder: (folder / "lists.py").write_text("def build():\n    return []\n")
        and None),
    Bad("truncated-pt2", ("layers", "cut.pt2"), 2, r"cut\.pt2: not a readable torch\.export",
        lambda folder: (folder / "cut.pt2").write_bytes(
            (build_plain_pt2(folder / "whole.pt2")).read_bytes()[:700])),
]

# --------------------------------------------------------------------------- kernels, numbers, text
PARSING_CASES: list[Bad] = []

# --------------------------------------------------------------------------- budgets and bounds
BOUNDS_CASES: list[Bad] = []

# ---------------------------------------------------------------- paths, images, batches, data
FILES_CASES: list[Bad] = []

CASES = [*TRUST_CASES, *PARSING_CASES, *BOUNDS_CASES, *FILES_CASES]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gets_one_clean_line(case: Bad, cli, tmp_path: Path, chelsea: Path) -> None:
    if case.setup is not None:
        case.setup(tmp_path)
    before = _files(tmp_path)
    result = cli(*(arg.replace("{sample}", str(chelsea)) for arg in case.args))
    printed = result.out + result.err
    assert "Traceback" not in printed
    assert result.code == case.code, printed
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert errors, printed
    assert all(len(line.splitlines()) == 1 for line in errors)
    assert re.search(case.words, result.err, re.IGNORECASE | re.DOTALL), result.err
    if case.code == 2:
        assert _files(tmp_path) == before, "a refused command left files behind"


def test_table_is_not_empty() -> None:
    assert len(CASES) >= 1
