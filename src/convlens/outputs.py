"""Where results go: output folders and files checked before work starts, written atomically.

Every command that writes goes through here, so the promises hold everywhere:

* an output path that cannot work (under a file, on a read-only or pseudo file system, not
  writable) is refused in one line *before* any slow work (:func:`check_out_dir`,
  :func:`check_out_file`);
* nothing a user made is overwritten unasked: a non-empty folder or an existing file is only
  reused with ``force``;
* nothing is left half-written after an error: a result folder is filled in a hidden staging
  folder and moved into place only when complete (:func:`staged_dir`); a single file
  is written under a temporary name and renamed (:func:`atomic_path`); folders made on the way
  are removed again when the work fails;
* result folders of a batch never collide (:func:`unique_names`);
* paths are shown with :func:`printable`, so a file name that is not UTF-8 prints and saves.

Torch-free and matplotlib-free: the CLI, the library and the page can all import it cheaply.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import FIGURE_DPI
from .errors import Option, OutputError

if TYPE_CHECKING:
    from matplotlib.figure import Figure


_STAGING = ".convlens-partial-"
"""Prefix of the hidden staging folders and files (removed on error, renamed on success)."""
FORCE = Option("force=True", "--force")
"""The setting that lets results be overwritten, as the library and the CLI name it."""


def printable(value: str | os.PathLike) -> str:
    """``value`` as text any UTF-8 stream, file or font accepts.

    A file name whose bytes are not UTF-8 reaches Python as lone surrogates (``caf\\udce9``);
    those bytes are written as ``\\xe9`` instead of breaking a print, a UTF-8 text file or a
    figure title. Other text passes unchanged.
    """
    text = os.fspath(value)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that did not come from a file name
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_out_dir(path: Path, force: bool = False) -> None:
    """Raise :class:`OutputError` unless ``path`` can become a result folder.

    It may be absent (then its nearest existing parent must be a folder this process can
    write in), an empty folder, or a non-empty one when ``force`` allows reusing it.
    """
    path = Path(path)
    shown = printable(path)
    _check_name(path)
    try:
        if path.is_symlink() and not path.exists():
            raise OutputError(f"output path {shown} is a broken link")
        if path.exists() and not path.is_dir():
            raise OutputError(f"output path {shown} exists and is not a folder")
        if path.is_dir():
            if any(path.iterdir()) and not force:
                raise OutputError(f"output folder {shown} is not empty; pass force=True to "
                                  "overwrite it", options=[FORCE])
            _probe(path, path)
            return
    except OSError as exc:
        raise OutputError(f"cannot use output folder {shown}: {_reason(exc)}") from None
    _check_parents(path)


def check_out_file(path: Path, force: bool = False) -> None:
    """Raise :class:`OutputError` unless a file can be written at ``path``: it is absent (its
    nearest existing parent a writable folder) or, with ``force``, an existing file."""
    path = Path(path)
    shown = printable(path)
    _check_name(path)
    try:
        if path.is_dir():
            raise OutputError(f"{shown} is a folder, not a file name")
        if path.exists() and not force:
            raise OutputError(f"{shown} exists; pass force=True to overwrite it", options=[FORCE])
        if path.exists() and not path.is_file():
            raise OutputError(f"{shown} is not a regular file (a device, pipe or socket); "
                              "give a file name")
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {_reason(exc)}") from None
    _check_parents(path)


def prepare_out_dir(path: Path, force: bool = False) -> Path:
    """Check ``path`` (:func:`check_out_dir`) and create it, with its parents."""
    check_out_dir(path, force)
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {printable(path)}: {_reason(exc)}"
                          ) from None
    return Path(path)


@contextlib.contextmanager
def staged_dir(target: Path, force: bool = False) -> Iterator[Path]:
    """Fill a result folder all at once: yields a hidden staging folder beside ``target`` (or
    inside it, when ``target`` exists already: only the folder the user named need be writable).

    When the block finishes, the staging folder becomes ``target`` (a rename when ``target``
    is absent; with ``force``, its files replace those of the same name in an existing
    ``target``). When the block raises, the staging folder and any parent folders made for it
    are removed, so an error leaves nothing behind.
    """
    target = Path(target)
    check_out_dir(target, force)
    existing = target.is_dir()
    made = [] if existing else _make_parents(target.parent)
    try:
        stage = _fresh(target if existing else target.parent, target.name, is_dir=True)
    except OSError as exc:
        _remove_made(made)
        raise OutputError(f"cannot write into {printable(target)}: {_reason(exc)}") from None
    try:
        yield stage
        _commit_dir(stage, target)
    except BaseException as exc:
        shutil.rmtree(stage, ignore_errors=True)
        _remove_made(made)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write into {printable(target)}: {_reason(exc)}"
                              ) from None
        raise


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Write one file all at once: yields a hidden temporary path beside ``path`` with the same
    suffix (so writers that go by the suffix pick the right format); it is renamed to ``path``
    when the block finishes and removed, with any parent folders made for it, when it raises.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # never swap a folder or a device for a file
        raise OutputError(f"{printable(path)} is not a regular file; give a file name")
    made = _make_parents(path.parent)
    try:
        temporary = _fresh(path.parent, path.name, is_dir=False)
    except OSError as exc:
        _remove_made(made)
        raise OutputError(f"cannot write {printable(path)}: {_reason(exc)}") from None
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        _remove_made(made)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {printable(path)}: {_reason(exc)}") from None
        raise


def write_file(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(temporary_path)`` under :func:`atomic_path`; returns ``path``."""
    with atomic_path(path) as temporary:
        write(temporary)
    return Path(path)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_file(path, lambda p: p.write_text(text, encoding="utf-8"))


def save_figure(figure: Figure, path: Path, dpi: int = FIGURE_DPI) -> Path:
    """Save a matplotlib ``figure`` to ``path`` atomically (format from the suffix) and clear
    it, so a batch of figures does not pile up in memory (the library's figures are built
    without pyplot, so nothing else holds them)."""
    try:
        write_file(path, lambda p: figure.savefig(p, dpi=dpi))
    finally:
        figure.clear()
    return Path(path)


def create_folder(path: Path) -> list[Path]:
    """Create the folder ``path`` with its missing parents; returns the folders made,
    outermost first, for :func:`remove_made` to take back after an error."""
    path = Path(path)
    try:
        if path.exists() and not path.is_dir():
            raise OutputError(f"output path {printable(path)} exists and is not a folder")
    except OSError as exc:
        raise OutputError(f"cannot create folder {printable(path)}: {_reason(exc)}") from None
    return _make_parents(path)


def remove_made(made: Sequence[Path]) -> None:
    """Remove the folders :func:`create_folder` made, innermost first, where still empty."""
    _remove_made(list(made))


def unique_names(sources: Sequence[Path]) -> list[str]:
    """A result-folder name per source file: unique within the batch, and the same for the
    same list of sources.

    A file's stem names its folder (``dog.jpg`` -> ``dog``); the first file with a stem keeps
    it. A later file with the same stem is named ``STEM-EXT`` when no other file shares both
    (``foo.png``, ``foo.jpg`` -> ``foo``, ``foo-jpg``), else ``STEM-2``, ``STEM-3``, ...; a
    name another file's stem would take is skipped (``foo-2.png`` keeps its own ``foo-2``).
    Names are compared ignoring case, as macOS and Windows file systems do.
    """
    stems = [source.stem if source.stem not in ("", ".", "..") else source.name
             for source in sources]  # "..png" must not name the folder above
    extensions = [source.suffix.lstrip(".") for source in sources]
    reserved = {stem.lower() for stem in stems}
    pairs: dict[tuple[str, str], int] = {}
    for stem, extension in zip(stems, extensions):
        key = (stem.lower(), extension.lower())
        pairs[key] = pairs.get(key, 0) + 1
    taken: set[str] = set()
    names = []
    for stem, extension in zip(stems, extensions):
        chosen = stem
        if stem.lower() in taken:
            candidates = ([f"{stem}-{extension}"] if extension and
                          pairs[(stem.lower(), extension.lower())] == 1 else [])
            candidates += (f"{stem}-{number}" for number in range(2, 2 * len(sources) + 3))
            chosen = next(name for name in candidates
                          if name.lower() not in taken and name.lower() not in reserved)
        taken.add(chosen.lower())
        names.append(chosen)
    return names


# --- helpers ------------------------------------------------------------------------------

def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _check_name(path: Path) -> None:
    """Refuse what no file system takes: a NUL character, or a name longer than the limit."""
    shown = printable(path)
    if "\x00" in str(path):
        raise OutputError(f"output path {shown!r} holds a NUL character")
    try:
        limit = os.pathconf(_nearest_existing(path), "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            short = shown if len(shown) <= 60 else f"{shown[:60]}..."
            raise OutputError(f"cannot write {short}: a name in it is {size} bytes long, over "
                              f"the file system's {limit}")


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.is_symlink() or candidate.exists():
            return candidate
    return Path(".")


def _check_parents(path: Path) -> None:
    """The nearest existing parent of ``path`` must be a folder this process can write in."""
    shown = printable(path)
    try:
        base = _nearest_existing(path.parent if path.parent != path else path)
        if base.is_symlink() and not base.exists():
            raise OutputError(f"cannot write {shown}: {printable(base)} is a broken link")
        if not base.is_dir():
            raise OutputError(f"cannot write {shown}: {printable(base)} is a file, not a "
                              "folder")
    except OSError as exc:
        raise OutputError(f"cannot write {shown}: {_reason(exc)}") from None
    _probe(base, path)


def _probe(folder: Path, wanted: Path) -> None:
    """Refuse a folder marked read-only for everyone (no write bit at all; even root is kept
    out, as the mark asks), then make and remove a hidden folder in it: the only honest test of
    writing there (read-only mounts and pseudo file systems ignore permission bits)."""
    where = "" if folder == wanted else f" ({printable(folder)} does not accept new files)"
    try:
        if not folder.stat().st_mode & 0o222:
            raise OutputError(f"cannot write {printable(wanted)}: {printable(folder)} is "
                              "read-only (no one may write in it)")
        probe = _fresh(folder, "probe", is_dir=True)
        probe.rmdir()
    except OSError as exc:
        raise OutputError(f"cannot write {printable(wanted)}: {_reason(exc)}{where}") from None


def _fresh(parent: Path, name: str, *, is_dir: bool) -> Path:
    """A new hidden, uniquely named folder or empty file in ``parent`` for ``name`` (keeping its
    suffix), made with the usual permissions (the umask applies, unlike ``tempfile``'s 0600)."""
    suffix = "" if is_dir else Path(name).suffix[:16]
    for _ in range(100):
        candidate = parent / f"{_STAGING}{secrets.token_hex(4)}-{Path(name).stem[:40]}{suffix}"
        try:
            if is_dir:
                candidate.mkdir()
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary name in {printable(parent)}")


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those made, outermost first."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    made: list[Path] = []
    try:
        for candidate in reversed(missing):
            try:
                candidate.mkdir()
            except FileExistsError:
                if candidate.is_dir():  # made meanwhile by someone else: not ours to remove
                    continue
                raise
            made.append(candidate)
    except OSError as exc:
        _remove_made(made)
        raise OutputError(f"cannot create folder {printable(candidate)}: {_reason(exc)}"
                          ) from None
    return made


def _remove_made(made: list[Path]) -> None:
    """Remove the folders :func:`_make_parents` made, innermost first, where still empty."""
    for folder in reversed(made):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _commit_dir(stage: Path, target: Path) -> None:
    """Make ``stage`` the result folder ``target``: renamed into place when ``target`` is
    absent; otherwise (``stage`` then lies inside it) its entries replace ``target``'s."""
    if stage.parent != target:
        stage.rename(target)
        return
    for entry in sorted(stage.iterdir()):
        destination = target / entry.name
        if destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)
        os.replace(entry, destination)
    stage.rmdir()


__all__ = [
    "atomic_path",
    "check_out_dir",
    "check_out_file",
    "create_folder",
    "prepare_out_dir",
    "printable",
    "remove_made",
    "save_figure",
    "staged_dir",
    "unique_names",
    "write_file",
    "write_text",
]
