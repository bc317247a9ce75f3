"""The ``convlens`` command line: thin commands over the library.

Each command module registers itself on the shared typer app. :func:`main` imports only the
module of the command asked for (all of them for ``--help`` or an unknown name, none for
``--version``), so a command pays for no other command's imports. It turns every
:class:`~convlens.errors.ConvlensError` and usage error into one line on stderr and a non-zero
exit code, never a traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import click
import typer

from ..errors import ConvlensError
from ..limits import BUDGET_ENV, BudgetError
from ._app import COMMAND_ORDER, app, error_console
from ._routing import route

COMMAND_MODULES = {
    "run": "run", "kernels": "run",
    "explain": "explain", "size": "explain", "animate": "explain",
    "serve": "serve",
    "train": "train", "evaluate": "train", "predict": "train",
    "layers": "inspect", "inspect": "inspect", "saliency": "inspect",
    "explain-model": "explain_model",
}
"""The module under ``convlens.cli`` that registers each command."""


def load_commands(args: list[str]) -> None:
    """Register the commands ``args`` may run: the one named (every one for ``--help``, no
    command or a name not known here), none for a bare ``--version``."""
    name = _command(args)
    if name in COMMAND_MODULES:
        modules = {COMMAND_MODULES[name]}
    elif name == "COMMAND" and "--version" in args:
        modules = set()
    else:
        modules = set(COMMAND_MODULES.values())
    for module in sorted(modules):
        importlib.import_module(f".{module}", __name__)
    app.registered_commands.sort(key=_listed_at)


def _listed_at(info) -> int:
    """A command's place in ``--help``: COMMAND_ORDER's, one not listed there last."""
    name = info.name or info.callback.__name__
    return COMMAND_ORDER.index(name) if name in COMMAND_ORDER else len(COMMAND_ORDER)

EXIT_USER_ERROR = 2
# typer >= 0.26 vendors its own click; older releases raise click's own exceptions.
_USAGE_ERRORS = (click.exceptions.ClickException,
                 getattr(typer, "TyperException", click.exceptions.ClickException))
_ABORTS = (click.exceptions.Abort, typer.Abort, KeyboardInterrupt)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if _command(args) == "explain":  # with --layer: any model's layer (cli/explain_model.py)
        args = route(args)
    _tolerant_streams()
    load_commands(args)
    try:
        result = app(args=args, prog_name="convlens", standalone_mode=False,
                     obj={"argv": args})
    except BudgetError as exc:
        _fail(exc.hinted(f"convlens --budget {exc.suggested} {_command(args)} ..., or "
                         f"{BUDGET_ENV}={exc.suggested}"))
        return EXIT_USER_ERROR
    except ConvlensError as exc:
        _fail(exc.worded("cli"))  # the library's setting names become the CLI's flags
        return EXIT_USER_ERROR
    except _ABORTS:
        _fail("interrupted")
        return 130
    except _USAGE_ERRORS as exc:
        context = getattr(exc, "ctx", None)
        command = context.command_path if context is not None else "convlens"
        # the model form runs as the hidden `explain-model` (see route); the user typed explain
        command = command.replace("convlens explain-model", "convlens explain")
        message = (exc.format_message() if isinstance(exc, click.exceptions.ClickException)
                   else str(exc))
        _fail(f"{message} (see `{command} --help`)")
        return getattr(exc, "exit_code", EXIT_USER_ERROR) or EXIT_USER_ERROR
    return result if isinstance(result, int) else 0


def _command(args: list[str]) -> str:
    """The command's name in ``args``, past the global ``--budget SIZE``."""
    words = iter(args)
    for word in words:
        if word == "--budget":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return "COMMAND"


def _tolerant_streams() -> None:
    """Let stdout and stderr print any text: a file name that is not UTF-8 (a lone surrogate in
    Python) shows as ``\udce9`` instead of stopping the command with a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors="backslashreplace")


def _fail(message: str) -> None:
    from ..outputs import printable  # a non-UTF-8 file name in a message must still print

    error_console.print(f"error: {printable(message)}", markup=False, soft_wrap=True)


__all__ = ["app", "main"]
