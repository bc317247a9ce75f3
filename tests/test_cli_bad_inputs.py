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


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


# --------------------------------------------------------------------------- model files and trust
TRUST_CASES: list[Bad] = []

# --------------------------------------------------------------------------- kernels, numbers, text
PARSING_CASES: list[Bad] = []

# --------------------------------------------------------------------------- budgets and bounds
BOUNDS_CASES: list[Bad] = []

# --------------------------------------------------------------------------- paths, images, batches, data
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
