"""Named convolution kernels and the parsers for users' own.

A :class:`Kernel` holds float32 weights of shape ``(C, kh, kw)``: C=1 for a gray kernel (applied to
every input channel, see :func:`kernel_bank`) or C=3 for an RGB kernel. The built-in registry holds
the tutorial's three (``sobel-h``, ``laplacian``, ``sobel-v``) and the classic image filters.

Custom kernels come from inline text (``"1 0 -1; 2 0 -2; 1 0 -1"``: rows split by ``;``, numbers
by spaces or commas, channels of an RGB kernel split by ``|``), a JSON list (``[[1,0],[0,-1]]``),
or a ``.npy``/``.json``/``.txt`` file.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import KernelError

MAX_KERNEL_SIDE = 31
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
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `convlens kernels`"
    raise KernelError(f"unknown kernel {name!r}{hint}")


def parse_kernel(spec: str | Path | Sequence | np.ndarray | torch.Tensor | Kernel) -> Kernel:
    """Turn a user's kernel spec into a :class:`Kernel`.

    A string is tried, in order, as a registered name, an existing file (``.npy``, ``.json``,
    text), a JSON list, and inline text with rows split by ``;``.

    >>> parse_kernel("1 0 -1; 2 0 -2; 1 0 -1").weights.shape
    (1, 3, 3)
    >>> parse_kernel("sobel-h").as_2d()[0].tolist()
    [-1.0, -2.0, -1.0]
    """
    if isinstance(spec, Kernel):
        return spec
    if isinstance(spec, torch.Tensor):
        spec = spec.detach().cpu().numpy()
    if isinstance(spec, (np.ndarray, list, tuple)):
        return Kernel("custom", _validate(spec, "custom"), "user-supplied weights")
    if isinstance(spec, Path):
        return _load_file(spec)
    text = str(spec).strip()
    if not text:
        raise KernelError("kernel spec is empty")
    if re.fullmatch(r"[A-Za-z][\w.\-]*", text) and not Path(text).suffix:
        return get_kernel(text)
    path = Path(text).expanduser()
    if path.suffix.lower() in (".npy", ".json", ".txt", ".csv") or path.exists():
        return _load_file(path)
    if text.startswith("["):
        return Kernel(_short_name(text), _validate(_json_values(text, "inline"), text), "inline")
    return Kernel(_short_name(text), _parse_text(text), "inline")


def parse_kernels(specs: Iterable[str | Kernel]) -> list[Kernel]:
    """Parse several specs; a single string may hold a comma list of names (``"a,b"``)."""
    kernels: list[Kernel] = []
    for spec in specs:
        kernels.append(parse_kernel(spec))
    if not kernels:
        raise KernelError("no kernels given")
    return kernels


def split_names(names: str) -> list[str]:
    """``"sobel-h, laplacian"`` -> ``["sobel-h", "laplacian"]`` (empty items dropped)."""
    return [part.strip() for part in names.split(",") if part.strip()]


def kernel_bank(kernels: Sequence[Kernel], in_channels: int) -> torch.Tensor:
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
                f"{in_channels}; use --mode rgb for RGB kernels"
            )
        top, left = (height - kh) // 2, (width - kw) // 2
        bank[index, :, top : top + kh, left : left + kw] = weights
    return torch.from_numpy(bank)


def unique_names(kernels: Sequence[Kernel]) -> list[str]:
    """Display names, made unique with ``#2``, ``#3`` suffixes where a name repeats."""
    seen: dict[str, int] = {}
    names = []
    for kernel in kernels:
        seen[kernel.name] = seen.get(kernel.name, 0) + 1
        count = seen[kernel.name]
        names.append(kernel.name if count == 1 else f"{kernel.name}#{count}")
    return names


def _validate(values: Sequence | np.ndarray, name: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise KernelError(f"kernel {name!r} is ragged or not numeric; rows must be equal") from None
    if array.size == 0:
        raise KernelError(f"kernel {name!r} is empty")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] not in (1, 3):
        raise KernelError(
            f"kernel {name!r} must be (kh, kw) or (3, kh, kw); got shape {tuple(array.shape)}"
        )
    if not np.isfinite(array).all():
        raise KernelError(f"kernel {name!r} holds NaN or infinite values")
    kh, kw = array.shape[1:]
    if kh > MAX_KERNEL_SIDE or kw > MAX_KERNEL_SIDE:
        raise KernelError(
            f"kernel {name!r} is {kh}x{kw}; the largest supported side is {MAX_KERNEL_SIDE}"
        )
    return array.astype(np.float32)


def _parse_text(text: str) -> np.ndarray:
    channels = []
    for channel_text in text.split("|"):
        rows = [row for row in channel_text.strip().strip(";").split(";")]
        matrix = []
        for number, row in enumerate(rows, start=1):
            cells = [cell for cell in re.split(r"[,\s]+", row.strip()) if cell]
            if not cells:
                raise KernelError(f"kernel text {text!r}: row {number} is empty")
            try:
                matrix.append([_number(cell) for cell in cells])
            except ValueError:
                raise KernelError(f"kernel text {text!r}: {row.strip()!r} is not numbers") from None
        widths = {len(row) for row in matrix}
        if len(widths) != 1:
            lengths = ", ".join(str(len(row)) for row in matrix)
            raise KernelError(f"kernel text {text!r} is ragged: rows have {lengths} numbers")
        channels.append(matrix)
    if len({(len(c), len(c[0])) for c in channels}) != 1:
        raise KernelError(f"kernel text {text!r}: channels split by '|' differ in size")
    return _validate(channels if len(channels) > 1 else channels[0], text)


def _number(cell: str) -> float:
    if "/" in cell:
        top, bottom = cell.split("/", 1)
        return float(top) / float(bottom)
    return float(cell)


def _json_values(text: str, origin: str) -> list:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise KernelError(f"kernel {origin!r} is not valid JSON: {exc.msg}") from None


def _load_file(path: Path) -> Kernel:
    if not path.exists():
        raise KernelError(f"kernel file not found: {path}")
    name = path.stem
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            values = np.load(path, allow_pickle=False)
            return Kernel(name, _validate(values, name), f"from {path.name}")
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise KernelError(f"cannot read kernel file {path}: {exc}") from None
    if suffix == ".json" or text.startswith("["):
        return Kernel(name, _validate(_json_values(text, str(path)), name), f"from {path.name}")
    return Kernel(name, _parse_text(text.replace("\n", ";")), f"from {path.name}")


def _short_name(text: str) -> str:
    compact = re.sub(r"\s+", " ", text)
    return compact if len(compact) <= 24 else compact[:21] + "..."


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def _register_builtins() -> None:
    add = register_kernel
    add("sobel-h", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
        "horizontal edges: brightness changing from top to bottom (Sobel)")
    add("laplacian", [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
        "edges in every direction: a pixel against its 4 neighbours (Laplacian)",
        aliases=("laplacian-4",))
    add("sobel-v", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
        "vertical edges: brightness changing from left to right (Sobel)")
    add("laplacian-8", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
        "edges in every direction, diagonals included: a pixel against its 8 neighbours")
    add("prewitt-h", [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
        "horizontal edges without Sobel's centre weighting (Prewitt)")
    add("prewitt-v", [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
        "vertical edges without Sobel's centre weighting (Prewitt)")
    add("scharr-h", [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
        "horizontal edges with better rotational symmetry (Scharr)")
    add("scharr-v", [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
        "vertical edges with better rotational symmetry (Scharr)")
    add("diagonal-45", [[0, 1, 2], [-1, 0, 1], [-2, -1, 0]],
        "diagonal edges rising to the right (/), brighter above")
    add("diagonal-135", [[2, 1, 0], [1, 0, -1], [0, -1, -2]],
        "diagonal edges falling to the right (\\), brighter above")
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
        "emboss: relief lit from the top left")
    add("outline", [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
        "outline: strong response on every edge, flat areas go to 0 (same numbers as laplacian-8)")
    add("identity", [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
        "identity: copies the input, a baseline to compare the others with")


_register_builtins()
