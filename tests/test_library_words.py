"""The library's messages and notes name no CLI flag (``--amp``) and no command (``convlens
layers``): notebook and page users read them too. A setting is named as the library spells it
and carried as an :class:`convlens.errors.Option`, which the CLI and the page reword. Only the
surfaces (``cli/``, ``serve/``) and docstrings, comments and ``Option(...)`` itself may name
flags."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "convlens"
SURFACES = ("cli/", "serve/")
COMMANDS = ("run", "kernels", "explain", "size", "animate", "serve", "train", "evaluate",
            "predict", "layers", "inspect", "saliency")
CLI_WORDS = re.compile(r"(?<![\w-])--[a-z][a-z-]+|\bconvlens (" + "|".join(COMMANDS) + r")\b")
KNOWN: set[tuple[str, str]] = set()
"""Library words allowed to name the CLI, as (file, words): none."""


def _docstrings(tree: ast.AST) -> set[int]:
    """The string constants that are docstrings (a module's, class's, function's or an
    attribute's: any string standing alone as a statement)."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def _inside_options(tree: ast.AST) -> set[int]:
    """Every node inside an ``Option(...)`` call: the one place a flag is spelled."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (getattr(node.func, "id", None) == "Option"
                                           or getattr(node.func, "attr", None) == "Option"):
            inside.update(id(sub) for sub in ast.walk(node))
    return inside


def library_cli_words(root: Path = SRC) -> list[str]:
    """``file:line: text`` for each library string under ``root`` that names a flag or a
    command."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name.startswith(SURFACES):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _docstrings(tree) | _inside_options(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in skipped and CLI_WORDS.search(node.value)
                    and not any(name == file and words in node.value for file, words in KNOWN)):
                found.append(f"{name}:{node.lineno}: {node.value!r}")
    return found


def test_library_messages_name_no_flag_or_command():
    assert library_cli_words() == []


def test_the_scan_finds_a_flag_in_a_message(tmp_path):
    """The scan is not blind: a message with a flag, and one with a command, are found; a
    surface, a docstring, an Option and a comment are not."""
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "x.py").write_text('raise ConfigError("pass --force")\n')
    (tmp_path / "module.py").write_text(
        '"""Docs may say `convlens run --force`."""\n'
        'FORCE = Option("force=True", "--force")  # --force\n'
        'def f():\n'
        '    raise ConfigError(f"pass --force or {FORCE.python}")\n'
        'NOTE = f"see `convlens layers` {1}"\n')
    found = sorted(line.split(": ")[0] for line in library_cli_words(tmp_path))
    assert found == ["module.py:4", "module.py:5"]
