"""Named convolution kernels and the parsers for users' own.

A :class:`Kernel` holds float32 weights of shape ``(C, kh, kw)``: C=1 for a gray kernel (applied to
every input channel, see :func:`kernel_bank`) or C=3 for an RGB kernel. The built-in registry holds
the tutorial's three (``sobel-h``, ``laplacian``, ``sobel-v``) and the classic image filters.

Custom kernels come from inline text (``"1 0 -1; 2 0 -2; 1 0 -1"``: rows split by ``;``, numbers
by spaces or commas, channels of an RGB kernel split by ``|``), a JSON list (``[[1,0],[0,-1]]``),
or a ``.npy``/``.json``/``.txt``/``.csv`` file (text files: a row per line, ``# comments``
ignored). Every weight must be finite and fit in float32; an error names the bad cell by its row
and column (``"kernel 2 ('1 nan'), row 1, column 2: NaN is not a finite number"``).
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import math
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, cast

import numpy as np

from .errors import KernelError, Option
from .limits import MAX_KERNEL_SIDE
from .wording import clipped, whole_number

if TYPE_CHECKING:  # torch loads only where a tensor is asked for (kernel_bank)
    import torch

MAX_KERNEL_FILE_BYTES = 1024 * 1024
"""Largest kernel file read, in bytes (a 3x31x31 kernel written out fits many times over)."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
"""Largest weight, in size, a kernel holds (its weights are float32)."""
FILE_SUFFIXES = (".npy", ".json", ".txt", ".csv")
"""Suffixes that make a kernel spec a file name."""
CHANNEL_LABELS = ("R", "G", "B")
TUTORIAL_KERNELS = ("sobel-h", "laplacian", "sobel-v")


@dataclass(frozen=True, eq=False)
class Kernel:
    """A named kernel: ``weights`` is float32 ``(C, kh, kw)`` with C in {1, 3}."""

    name: str
    weights: np.ndarray
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def channels(self) -> int:
        return int(self.weights.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(kh, kw)`` in pixels."""
        return int(self.weights.shape[1]), int(self.weights.shape[2])

    def as_2d(self) -> np.ndarray:
        """The ``(kh, kw)`` weights of a gray kernel (error for an RGB kernel)."""
        if self.channels != 1:
            raise KernelError(f"kernel {self.name!r} has {self.channels} channels, not 1")
        return self.weights[0]

    def to_text(self) -> str:
        """Inline text form, parseable by :func:`parse_kernel` (channels split by ``|``)."""
        return " | ".join(
            "; ".join(" ".join(_fmt(v) for v in row) for row in channel)
            for channel in self.weights
        )

    def __repr__(self) -> str:
        kh, kw = self.size
        return f"Kernel({self.name!r}, {self.channels}x{kh}x{kw})"


_REGISTRY: dict[str, Kernel] = {}
_ALIASES: dict[str, str] = {}


def register_kernel(
    name: str, weights: Sequence | np.ndarray, description: str, aliases: Iterable[str] = ()
) -> Kernel:
    """Add a named kernel to the registry (names are lower-case, unique)."""
    key = name.lower()
    if key in _REGISTRY or key in _ALIASES:
        raise KernelError(f"a kernel named {name!r} is already registered")
    kernel = Kernel(key, _validate(weights, key), description, tuple(aliases))
    _REGISTRY[key] = kernel
    for alias in kernel.aliases:
        _ALIASES[alias.lower()] = key
    return kernel


KERNEL_LIST = Option("list_kernels()", "`convlens kernels`", "the kernel menu")
"""Where each surface lists the built-in kernels: :func:`list_kernels`, the ``kernels``
command, the menu atop each of the page's kernels."""


def list_kernels(pattern: str = "*") -> list[str]:
    """Registered kernel names matching a shell-style ``pattern`` (``"sobel*"``), in order."""
    return [name for name in _REGISTRY if fnmatch.fnmatch(name, pattern.lower())]


def get_kernel(name: str) -> Kernel:
    """The registered kernel called ``name`` (or an alias); unknown names suggest close ones."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, [*_REGISTRY, *_ALIASES], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; see {KERNEL_LIST.python}"
    raise KernelError(f"unknown kernel {_short_name(name.strip())!r}{hint}",
                      options=[KERNEL_LIST])


def parse_kernel(
    spec: str | Path | Sequence | np.ndarray | torch.Tensor | Kernel, *, label: str | None = None
) -> Kernel:
    """Turn a user's kernel spec into a :class:`Kernel`.

    A string is tried, in order, as a registered name, a file (``.npy``, ``.json``, text; a
    name with one of those suffixes, or an existing path), a JSON list, and inline text with
    rows split by ``;`` (see :func:`parse_numbers`). ``label`` is how errors name the kernel
    (``"kernel 2"``); by default the spec itself. Every problem, from a name too long for a path
    to a NaN in row 3, raises :class:`KernelError` naming the cell or the file.

    >>> parse_kernel("1 0 -1; 2 0 -2; 1 0 -1").weights.shape
    (1, 3, 3)
    >>> parse_kernel("sobel-h").as_2d()[0].tolist()
    [-1.0, -2.0, -1.0]
    """
    if isinstance(spec, Kernel):
        return spec
    if _is_tensor(spec):
        if spec.is_complex():
            raise KernelError(f"{label or 'kernel'} holds complex numbers; weights must be real")
        spec = spec.detach().cpu().double().numpy()
    if isinstance(spec, (np.ndarray, list, tuple)):
        weights = _validate(spec, label or "kernel 'custom'")
        return Kernel("custom", weights, "user-supplied weights")
    if isinstance(spec, Path):
        return _load_file(spec, label)
    text = str(spec).strip()
    if not text:
        raise KernelError(f"{label or 'kernel spec'} is empty")
    if re.fullmatch(r"[A-Za-z][\w.\-]*", text) and not Path(text).suffix and not _is_float(text):
        return get_kernel(text)
    path = _file_path(text)
    if path is not None:
        return _load_file(path, label)
    name = _short_name(text)
    return Kernel(name, parse_numbers(text, label or f"kernel text {name!r}"), "inline")


def parse_kernels(specs: Iterable[str | Kernel]) -> list[Kernel]:
    """Parse several specs; with more than one, errors say which (``kernel 2 ('1 nan')``)."""
    specs = list(specs)
    kernels: list[Kernel] = []
    for number, spec in enumerate(specs, start=1):
        label = None
        if len(specs) > 1 and isinstance(spec, str):
            label = f"kernel {number} ({_short_name(spec.strip())!r})"
        kernels.append(parse_kernel(spec, label=label))
    if not kernels:
        raise KernelError("no kernels given")
    return kernels


def parse_numbers(text: str, label: str = "the numbers") -> np.ndarray:
    """Numbers a user typed -> float32 ``(C, h, w)`` with C in {1, 3}.

    ``text`` is a JSON list (``[[1, 0], [0, -1]]``) or rows split by ``;``, numbers split by
    spaces or commas, fractions written ``a/b``, the three channels of an RGB grid split by
    ``|``. Sides are at most :data:`MAX_KERNEL_SIDE`; every number must be finite and fit in
    float32. Anything else raises :class:`KernelError` that starts with ``label`` and names the
    cell (``"--patch, row 2, column 3: NaN is not a finite number"``). This is the
    parser of inline kernels, and of any grid of numbers typed instead of an image.
    """
    text = str(text).strip()
    if not text:
        raise KernelError(f"{label} is empty")
    if text.startswith("["):
        return _validate(_json_values(text, label), label)
    channels: list[list[tuple[str, str]]] = []
    for channel_text in text.split("|"):
        rows = channel_text.strip().strip(";").split(";")
        channels.append([(f"row {number}", row) for number, row in enumerate(rows, start=1)])
    return _parse_rows(channels, label, skip_empty=False)


def split_names(names: str) -> list[str]:
    """``"sobel-h, laplacian"`` -> ``["sobel-h", "laplacian"]`` (empty items dropped)."""
    return [part.strip() for part in names.split(",") if part.strip()]


def kernel_bank(kernels: Sequence[Kernel], in_channels: int) -> torch.Tensor:
    """Stack kernels into conv weights ``(K, in_channels, kh, kw)``, a float32 tensor (see
    :func:`kernel_array`, the same numbers as a NumPy array, without torch)."""
    import torch

    return torch.from_numpy(kernel_array(kernels, in_channels))


def kernel_array(kernels: Sequence[Kernel], in_channels: int) -> np.ndarray:
    """Stack kernels into conv weights ``(K, in_channels, kh, kw)`` float32.

    A gray kernel on an RGB input is spread over the channels with weight 1/3 each, so it sees
    the channel mean and its response keeps the gray scale. Kernels of different sizes are
    zero-padded, centred, to the largest one (they must differ by an even number of cells).
    """
    if not kernels:
        raise KernelError("no kernels given")
    height = max(k.size[0] for k in kernels)
    width = max(k.size[1] for k in kernels)
    bank = np.zeros((len(kernels), in_channels, height, width), dtype=np.float32)
    for index, kernel in enumerate(kernels):
        kh, kw = kernel.size
        if (height - kh) % 2 or (width - kw) % 2:
            raise KernelError(
                f"kernel {kernel.name!r} is {kh}x{kw} and cannot be centred in the "
                f"{height}x{width} of the largest kernel; give kernels of matching parity"
            )
        if kernel.channels == in_channels:
            weights = kernel.weights
        elif kernel.channels == 1:
            weights = np.repeat(kernel.weights, in_channels, axis=0) / in_channels
        else:
            raise KernelError(
                f"kernel {kernel.name!r} has {kernel.channels} channels but the image has "
                f"{in_channels}; load the image with mode='rgb' for RGB kernels",
                options=[Option("mode='rgb'", "--mode rgb", "colour: rgb")])
        top, left = (height - kh) // 2, (width - kw) // 2
        bank[index, :, top : top + kh, left : left + kw] = weights
    return bank


DENOMINATORS = (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 16, 25, 32, 64, 100, 128, 256, 512, 1024)
"""The factors :func:`common_denominator` tries, smallest first."""


def common_denominator(values: np.ndarray, limit: int = 1024) -> int:
    """Smallest d <= ``limit`` making every value times d a whole number (1 if none): how
    kernels are printed the way textbooks do (a Gaussian as ``1/16 x`` whole numbers).

    >>> common_denominator(np.array([1, 2, 1]) / 16)
    16
    """
    for denominator in DENOMINATORS:
        if denominator > limit:
            break
        scaled = values * denominator
        if np.allclose(scaled, np.round(scaled), atol=1e-4):
            return denominator
    return 1


def unique_names(kernels: Sequence[Kernel]) -> list[str]:
    """Display names, made unique with ``#2``, ``#3`` suffixes where a name repeats."""
    seen: dict[str, int] = {}
    names = []
    for kernel in kernels:
        seen[kernel.name] = seen.get(kernel.name, 0) + 1
        count = seen[kernel.name]
        names.append(kernel.name if count == 1 else f"{kernel.name}#{count}")
    return names


def _is_tensor(value: object) -> TypeGuard[torch.Tensor]:
    """Whether ``value`` is a torch tensor, told without importing torch (a program that made
    one has torch loaded already)."""
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _validate(values: object, label: str) -> np.ndarray:
    """Weights as given -> float32 ``(C, kh, kw)``, every cell finite and within float32; errors
    start with ``label`` and name the cell."""
    if isinstance(values, np.ndarray):
        array = _from_array(values, label)
    else:
        array = _from_nested(values, label)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(array) | (np.abs(array) > FLOAT32_MAX)
    if bad.any():
        channel, row, col = (int(i) for i in np.argwhere(bad)[0])
        value = float(array[channel, row, col])
        _check_number(value, _show(value), _cell(label, array.shape[0], channel, row + 1, col + 1))
    return array.astype(np.float32)


def _from_array(values: np.ndarray, label: str) -> np.ndarray:
    """An array's weights as float64 ``(C, kh, kw)``, its dtype and shape checked."""
    if values.dtype.kind not in "biuf":
        raise KernelError(f"{label} holds {values.dtype} values, not real numbers")
    if values.size == 0:
        raise KernelError(f"{label} is empty")
    array = values[None] if values.ndim == 2 else values
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise KernelError(
            f"{label} must be (kh, kw) or (3, kh, kw); got shape {tuple(values.shape)}"
        )
    _check_sides(label, *array.shape[1:])
    with np.errstate(over="ignore"):
        return np.asarray(array, dtype=np.float64)


def _from_nested(values: object, label: str) -> np.ndarray:
    """Nested lists (rows of numbers, or three grids of rows) as float64 ``(C, kh, kw)``; a
    cell that is no number, too large an integer, a ragged row or too much nesting is named."""
    if not isinstance(values, (list, tuple)):
        raise KernelError(f"{label} must be rows of numbers; got {_show(values)}")
    depth, probe = 0, values
    while isinstance(probe, (list, tuple)) and depth < 4:
        depth += 1
        if not probe:
            break
        probe = probe[0]
    if not probe and isinstance(probe, (list, tuple)):
        raise KernelError(f"{label} is empty")
    if depth not in (2, 3):
        raise KernelError(f"{label} must be rows of numbers (kh, kw) or three grids of them "
                          f"(3, kh, kw); got lists nested {depth} deep")
    planes = list(values) if depth == 3 else [values]
    if len(planes) not in (1, 3):
        raise KernelError(f"{label} has {len(planes)} grids; give 1, or 3 (R, G, B)")
    grids = []
    for channel, plane in enumerate(planes):
        where = f"{label}, channel {CHANNEL_LABELS[channel]}" if len(planes) == 3 else label
        if not isinstance(plane, (list, tuple)) or not all(
                isinstance(row, (list, tuple)) for row in plane):
            raise KernelError(f"{where} must be rows of numbers (lists are nested unevenly)")
        if not plane or not plane[0]:
            raise KernelError(f"{where} is empty")
        _check_sides(where, len(plane), max(len(row) for row in plane))
        if len({len(row) for row in plane}) != 1:
            lengths = ", ".join(str(len(row)) for row in plane)
            raise KernelError(f"{where} is ragged: rows have {lengths} numbers")
        grids.append([[_cell_value(value, _cell(label, len(planes), channel, r, c))
                       for c, value in enumerate(row, start=1)]
                      for r, row in enumerate(plane, start=1)])
    if len({(len(grid), len(grid[0])) for grid in grids}) != 1:
        raise KernelError(f"{label}: its R, G and B grids differ in size")
    return np.asarray(grids, dtype=np.float64)


def _cell_value(value: object, where: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise KernelError(f"{where}: {_show(value)} is not a number")
    try:
        number = float(value)
    except OverflowError:
        # an integer (or fraction) beyond float: compared exactly, as the number it is
        number = math.inf if cast("float", value) > 0 else -math.inf
    return _check_number(number, _show(value), where)


def _check_number(value: float, shown: str, where: str) -> float:
    """``value`` if it is finite and within float32, else :class:`KernelError` at ``where``."""
    if math.isnan(value):
        shown = "NaN" if shown.lower().lstrip("+-") == "nan" else f"{shown} (NaN)"
        raise KernelError(f"{where}: {shown} is not a finite number")
    if math.isinf(value) and "inf" in shown.lower():
        raise KernelError(f"{where}: {shown} is not a finite number")
    if not abs(value) <= FLOAT32_MAX:
        raise KernelError(f"{where}: {shown} is too large for a float32 weight (at most "
                          f"{FLOAT32_MAX:.4g} in size)")
    return value


def _check_sides(label: str, height: int, width: int) -> None:
    if height > MAX_KERNEL_SIDE or width > MAX_KERNEL_SIDE:
        raise KernelError(
            f"{label} is {height}x{width}; the largest supported side is {MAX_KERNEL_SIDE}"
        )


def _cell(label: str, channels: int, channel: int, row: int, col: int) -> str:
    """``"kernel 2, channel G, row 3, column 1"`` (rows and columns counted from 1)."""
    colour = f"channel {CHANNEL_LABELS[channel]}, " if channels == 3 else ""
    return f"{label}, {colour}row {row}, column {col}"


def _show(value: object, limit: int = 24) -> str:
    """A short, one-line picture of what a user gave (huge integers by their digit count)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return whole_number(int(value))
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return _fmt(value) if abs(value) < 1e15 else f"{value:.6g}"
    text = value if isinstance(value, str) else type(value).__name__ if isinstance(
        value, (dict, list, tuple)) else repr(value)
    if isinstance(value, (list, tuple, dict)):
        return f"a {text}"
    # not wording.clipped: a cell's text stands inside a sentence ("row 1, column 1: 10000...
    # is too large"), where a character count would split it; the cell's place is said already
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return repr(text) if isinstance(value, str) else text


def _parse_rows(channels: list[list[tuple[str, str]]], label: str, skip_empty: bool
                ) -> np.ndarray:
    """Typed rows -> float32 ``(C, h, w)``. ``channels`` holds, per channel, ``(where, text)``
    of each row (``where`` is ``"row 2"`` or ``"line 7"``); empty rows are skipped (a file's
    blank lines) or refused."""
    if len(channels) not in (1, 3):
        raise KernelError(f"{label} has {len(channels)} channels split by '|'; give 1, or 3 "
                          "(R, G, B)")
    grids = []
    for channel, rows in enumerate(channels):
        prefix = f"channel {CHANNEL_LABELS[channel]}, " if len(channels) == 3 else ""
        split = [(where, [cell for cell in re.split(r"[,\s]+", row.strip()) if cell])
                 for where, row in rows]
        for where, cells in split:
            if not cells and not skip_empty:
                raise KernelError(f"{label}: {prefix}{where} is empty")
        split = [(where, cells) for where, cells in split if cells]
        if not split:
            raise KernelError(f"{label}: {prefix.rstrip(', ') or 'it'} holds no numbers")
        _check_sides(label + (f", {prefix.rstrip(', ')}" if prefix else ""), len(split),
                     max(len(cells) for _, cells in split))
        matrix = [[_number(cell, f"{label}, {prefix}{where}, column {number}")
                   for number, cell in enumerate(cells, start=1)] for where, cells in split]
        if len({len(row) for row in matrix}) != 1:
            lengths = ", ".join(str(len(row)) for row in matrix)
            raise KernelError(f"{label} is ragged: {prefix}rows have {lengths} numbers")
        grids.append(matrix)
    if len({(len(grid), len(grid[0])) for grid in grids}) != 1:
        raise KernelError(f"{label}: channels split by '|' differ in size")
    return _validate(grids if len(grids) > 1 else grids[0], label)


def _number(cell: str, where: str) -> float:
    """One typed number (``-2``, ``0.5``, ``1e-3``, ``1/9``), finite and within float32."""
    shown = _show(cell).strip("'")
    try:
        if "/" in cell:
            top, bottom = cell.split("/", 1)
            value = float(top) / float(bottom)
        else:
            value = float(cell)
    except ValueError:
        raise KernelError(f"{where}: {_show(cell)} is not a number") from None
    except ZeroDivisionError:
        raise KernelError(f"{where}: {shown} divides by zero") from None
    return _check_number(value, shown, where)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _file_path(text: str) -> Path | None:
    """The path ``text`` names when it is meant as a kernel file: a kernel-file suffix, or an
    existing path; None for inline text (also text too long, or too odd, to be a path)."""
    if "\n" in text or len(text) > 4096:
        return None
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~user with no such user
        path = Path(text)
    if path.suffix.lower() in FILE_SUFFIXES:
        return path
    try:
        return path if path.exists() else None
    except (OSError, ValueError):
        return None


def _json_values(text: str, label: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KernelError(f"{label} is not valid JSON: {exc.msg}") from None
    except RecursionError:
        raise KernelError(f"{label} is JSON nested too deeply to be a kernel") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise KernelError(f"{label} is not usable JSON: {str(exc).splitlines()[0]}") from None


def _load_file(path: Path, label: str | None = None) -> Kernel:
    """A kernel from a ``.npy``, ``.json`` or text file (``.txt``, ``.csv``; rows on lines,
    ``# comments`` ignored), at most :data:`MAX_KERNEL_FILE_BYTES`."""
    try:
        exists, regular = path.exists(), path.is_file()
    except (OSError, ValueError):
        exists = regular = False
    if not exists:
        raise KernelError(f"kernel file not found: {path}")
    if not regular:
        raise KernelError(f"kernel file {path} is not a regular file")
    name = path.stem or "custom"
    label = label or f"kernel file {path.name!r}"
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return Kernel(name, _validate(_read_npy(path, label), label), f"from {path.name}")
        with path.open("rb") as handle:
            data = handle.read(MAX_KERNEL_FILE_BYTES + 1)
        if len(data) > MAX_KERNEL_FILE_BYTES:
            raise KernelError(f"{label} is over {MAX_KERNEL_FILE_BYTES // 1024} KiB; "
                              "a kernel file holds one small grid of numbers")
        text = data.decode("utf-8-sig").strip()
    except OSError as exc:
        raise KernelError(f"cannot read kernel file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise KernelError(f"{label} is not UTF-8 text") from None
    if suffix == ".json" or text.startswith("["):
        return Kernel(name, _validate(_json_values(text, label), label), f"from {path.name}")
    channels: list[list[tuple[str, str]]] = [[]]
    for number, line in enumerate(text.splitlines(), start=1):
        pieces = line.split("#", 1)[0].split("|")
        for index, piece in enumerate(pieces):
            if index:
                channels.append([])
            channels[-1].extend((f"line {number}", row) for row in piece.split(";"))
    channels = [rows for rows in channels if any(row.strip() for _, row in rows)] or [[]]
    return Kernel(name, _parse_rows(channels, label, skip_empty=True), f"from {path.name}")


def _read_npy(path: Path, label: str) -> np.ndarray:
    """A ``.npy`` file's array, its header (shape, dtype) checked before any data is read."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except Exception as exc:  # numpy's header parser raises many kinds on a crafted header
        raise KernelError(f"{label} is not a readable .npy file: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None
    if dtype.kind not in "biuf":
        raise KernelError(f"{label} holds {dtype} values, not real numbers")
    if len(shape) not in (2, 3) or any(side > 3 * MAX_KERNEL_SIDE for side in shape):
        raise KernelError(f"{label} holds an array of shape {tuple(shape)}; a kernel is "
                          f"(kh, kw) or (3, kh, kw), at most {MAX_KERNEL_SIDE} a side")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as exc:
        raise KernelError(f"{label} is not a readable .npy file: {str(exc).splitlines()[0]}"
                          ) from None


def _short_name(text: str) -> str:
    """A kernel spec as a name in a message: one line, clipped."""
    return clipped(re.sub(r"\s+", " ", text), 24)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _register_builtins() -> None:
    add = register_kernel
    add("sobel-h", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        "horizontal edges: positive where the bright side is below, negative where it is "
        "above (Sobel)")
    add("laplacian", [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
        "edges in every direction: a pixel against its 4 neighbours (Laplacian)",
        aliases=("laplacian-4",))
    add("sobel-v", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "vertical edges: positive where the bright side is on the right, negative where it "
        "is on the left (Sobel)")
    add("laplacian-8", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
        "edges in every direction, diagonals included: a pixel against its 8 neighbours")
    add("prewitt-h", [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
        "horizontal edges, positive where the bright side is below, without Sobel's centre "
        "weighting (Prewitt)")
    add("prewitt-v", [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
        "vertical edges, positive where the bright side is on the right, without Sobel's "
        "centre weighting (Prewitt)")
    add("scharr-h", [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
        "horizontal edges, positive where the bright side is below, with better rotational "
        "symmetry (Scharr)")
    add("scharr-v", [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
        "vertical edges, positive where the bright side is on the right, with better "
        "rotational symmetry (Scharr)")
    add("diagonal-45", [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
        "diagonal edges falling to the right (\\), positive where the bright side is "
        "above-right (brightness grows at 45 degrees)")
    add("diagonal-135", [[2, 1, 0], [1, 0, -1], [0, -1, -2]],
        "diagonal edges rising to the right (/), positive where the bright side is "
        "above-left (brightness grows at 135 degrees)")
    add("gaussian-3", np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16,
        "gentle blur: 3x3 Gaussian (binomial 1-2-1, sums to 1)", aliases=("gaussian",))
    add("gaussian-5", np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256,
        "stronger blur: 5x5 Gaussian (binomial 1-4-6-4-1, sums to 1)")
    add("box-3", np.full((3, 3), 1 / 9), "box blur: the mean of the 3x3 neighbourhood",
        aliases=("box", "box-blur", "blur", "mean"))
    add("box-5", np.full((5, 5), 1 / 25), "box blur: the mean of the 5x5 neighbourhood")
    add("sharpen", [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
        "sharpen: the pixel plus its Laplacian, so edges stand out")
    add("emboss", [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
        "emboss: positive where the bright side is below-right, so shapes look like relief "
        "lit from the top left")
    add("outline", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
        "outline: a strong response on edges in every direction, 0 on flat areas (the same "
        "numbers as laplacian-8)")
    add("identity", [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
        "identity: copies the input, a baseline to compare the others with")


_register_builtins()
