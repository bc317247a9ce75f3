"""One image through one layer, written to a result folder.

:func:`run_image` is what ``convlens run`` does per image: load, compute the stages, write
``filters.png``, ``conv.png``, ``activated.png``, ``pooled.png``, ``overview.png`` (all stages in
one figure), ``stages.npz`` and ``run.json``.
An existing non-empty folder is only reused with ``force=True``; nothing else is ever overwritten.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import LayerConfig
from .defaults import FIGURE_DPI
from .devices import check_device_name
from .errors import ConfigError, Option
from .explain import PixelExplanation, PooledExplanation, explain_pixel, explain_pooled
from .images import ColorMode, load_image_array, parse_mode
from .kernels import Kernel, kernel_array
from .layers import (
    LayerEstimate,
    Stages,
    check_layer_budget,
    compute_stages,
    estimate_layer,
    stage_device,
)
from .limits import MAX_FIGURE_INCHES, MAX_KERNELS, check_at_most
from .numbers import format_bytes
from .outputs import check_out_dir as check_out_dir
from .outputs import prepare_out_dir as prepare_out_dir
from .outputs import printable, staged_dir, unique_names
from .version import __version__

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

DRAWING_MODULES = ("convlens.report", "convlens.plot", "convlens.plot.explain",
                   "convlens.plot.png")
"""What drawing a run needs, imported on first use (matplotlib is most of a run's import time):
:func:`preload_drawing` imports them on a thread while the image is read and computed."""


def preload_drawing() -> threading.Thread:
    """Start importing :data:`DRAWING_MODULES` on a thread, so the import runs while the
    image is decoded and its stages computed (Pillow and NumPy let go of the GIL); join it
    before drawing. An import error is left to the import where the module is used."""

    def load() -> None:
        import importlib

        for name in DRAWING_MODULES:
            try:
                importlib.import_module(name)
            except Exception:  # raised again, where it is used
                return

    thread = threading.Thread(target=load, name="convlens-imports", daemon=True)
    thread.start()
    return thread


STAGES_FILE = "stages.npz"
RUN_FILE = "run.json"
FIGURE_BYTES = 3 * 4 * int(MAX_FIGURE_INCHES * FIGURE_DPI) ** 2
"""Memory one figure may take while it is drawn and saved: the largest canvas
(:data:`~convlens.limits.MAX_FIGURE_INCHES` a side at ``FIGURE_DPI``, RGBA) three times over
(Agg's buffer, the PNG encoder's copy, matplotlib's own), about 500 MiB. Figures are drawn one
at a time."""


@dataclass
class RunResult:
    """What :func:`run_image` produced: the stages, the folder and the files in it."""

    source: Path
    out_dir: Path
    stages: Stages
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def _repr_png_(self) -> bytes:
        from .display import stages_png

        return stages_png(self.stages)


LARGE_STAGES_BYTES = 256 * 2**20
"""A ``stages.npz`` at least this large (256 MiB) is announced before it is written, with the
ways to write less (a 24 Mpx photo with three kernels writes about 740 MB)."""

FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class NpzChoice:
    """What ``stages.npz`` holds: ``arrays``, some of :attr:`Stages.STAGE_NAMES` in that order
    (none: no file is written), as ``dtype`` ``float32`` (the contract, the default) or
    ``float16`` (half the bytes; each value rounded to 11 significant bits, a relative error of
    at most 2**-11 = 0.049% for magnitudes over 6.1e-05, at most 3e-08 below).

    >>> NpzChoice.parse("pooled,conv", "float16").describe()
    'float16 conv, pooled'
    >>> NpzChoice().nbytes({"input": (1, 4, 4), "kernels": (1, 1, 3, 3), "conv": (1, 2, 2),
    ...                     "activated": (1, 2, 2), "pooled": (1, 1, 1)})
    136
    """

    arrays: tuple[str, ...] = Stages.STAGE_NAMES
    dtype: str = "float32"

    @classmethod
    def parse(cls, arrays: str = "all", dtype: str = "float32") -> NpzChoice:
        """``arrays``: ``all``, ``none`` or a comma list of stage names; ``dtype``: ``float32``
        or ``float16``. Unknown names are one error naming the choices."""
        if dtype not in ("float32", "float16"):
            raise ConfigError(f"unknown npz dtype {dtype!r}; choose float32 or float16")
        wanted = {"all": set(Stages.STAGE_NAMES), "none": set()}.get(
            arrays.strip().lower(), {name.strip() for name in arrays.split(",") if name.strip()})
        unknown = sorted(wanted - set(Stages.STAGE_NAMES))
        if unknown:
            raise ConfigError(f"unknown stage {unknown[0]!r} for stages.npz; choose from "
                              f"{', '.join(Stages.STAGE_NAMES)}, all or none")
        return cls(tuple(name for name in Stages.STAGE_NAMES if name in wanted), dtype)

    @property
    def is_default(self) -> bool:
        return self == NpzChoice()

    def describe(self) -> str:
        """``float32 input, kernels, conv, activated, pooled``, or ``no arrays``."""
        return f"{self.dtype} {', '.join(self.arrays)}" if self.arrays else "no arrays"

    def nbytes(self, shapes: dict[str, tuple[int, ...]]) -> int:
        """Bytes of the chosen arrays of stages of ``shapes`` (stage name -> shape), as
        written (the npz is an uncompressed zip: a few hundred bytes more)."""
        itemsize = np.dtype(self.dtype).itemsize
        return sum(int(np.prod(shapes[name])) * itemsize for name in self.arrays)


def stages_npz_note(shapes: dict[str, tuple[int, ...]], choice: NpzChoice = NpzChoice(),
                    at_least: int | None = None) -> str | None:
    """What ``stages.npz`` will hold when it is ``at_least`` this large (by default
    :data:`LARGE_STAGES_BYTES`), else None: ``stages.npz will be 709 MiB: float32 input,
    kernels, conv, activated, pooled``. The caller adds how to write less in its own words."""
    size = choice.nbytes(shapes)
    if size < (LARGE_STAGES_BYTES if at_least is None else at_least) or not choice.arrays:
        return None
    return f"{STAGES_FILE} will be {format_bytes(size)}: {choice.describe()}"


def save_stages(stages: Stages, path: Path, choice: NpzChoice = NpzChoice()) -> Path | None:
    """Write the npz contract (float32 ``input, kernels, conv, activated, pooled``), straight
    from the stages' memory (no copy of a whole stage is made). Another ``choice`` writes only
    its arrays, as its dtype, and an ``about`` string saying what the file holds (for float16,
    the largest change rounding made); no arrays write no file (None)."""
    if not choice.arrays:
        return None
    arrays: dict[str, Any] = {name: array for name, array in stages.to_numpy().items()
                              if name in choice.arrays}
    if choice.is_default:
        np.savez(path, **arrays)
        return path
    about = (f"convlens stages: {choice.describe()} (of input, kernels, conv, activated, "
             "pooled)")
    if choice.dtype == "float16":
        change = 0.0
        for name, array in arrays.items():
            largest = float(np.max(np.abs(array))) if array.size else 0.0
            if largest > FLOAT16_MAX:
                raise ConfigError(f"{name} holds values up to {largest:.4g}, beyond float16's "
                                  f"{FLOAT16_MAX:g}; write it as float32")
            halves = array.astype(np.float16)
            for part, half in zip(array.reshape(-1, *array.shape[-2:]),
                                  halves.reshape(-1, *array.shape[-2:])):
                if part.size:
                    change = max(change, float(np.max(np.abs(half.astype(np.float32) - part))))
            arrays[name] = halves
        about += (f"; float16 copies of the float32 values, each rounded to 11 significant "
                  f"bits (relative error at most 0.049%): the largest change here is "
                  f"{change:.3g}")
    np.savez(path, **arrays, about=np.array(about))
    return path


def load_stages(path: Path) -> dict[str, np.ndarray]:
    """Read a ``stages.npz`` back as a dict of arrays."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


class FigureFiles:
    """PNG files drawn on the calling thread and encoded and written on ``pool``'s threads, so
    the next figure is drawn while the last one is compressed and written (PIL and file writes
    let go of the GIL). At most :attr:`WAITING` drawn canvases wait for their turn, so memory
    stays at a few figures however many are drawn.

    :meth:`png` gives a figure's bytes (for ``report.html``, which embeds the same pictures
    instead of drawing them again or reading the files back).
    """

    WAITING = 2

    def __init__(self, folder: Path, pool: ThreadPoolExecutor, dpi: float = FIGURE_DPI) -> None:
        self.folder = Path(folder)
        self.pool = pool
        self.dpi = dpi
        self._done: dict[str, Future[bytes] | ChildFigure] = {}

    def add_drawn_elsewhere(self, name: str, child: ChildFigure) -> Path:
        """Take figure ``name`` as drawn by ``child`` (a :class:`ChildFigure`), in this place of
        the order."""
        self._done[name] = child
        return self.folder / name

    def add(self, name: str, draw: Callable[[], Figure]) -> Path:
        """Draw ``draw()`` and queue it to be written as ``name`` in the folder."""
        from .plot.png import draw_rgba

        waiting = [future for future in self._done.values()
                   if isinstance(future, Future) and not future.done()]
        for future in waiting[:max(0, len(waiting) - self.WAITING + 1)]:
            future.result()
        rgba = draw_rgba(draw(), self.dpi)
        path = self.folder / name
        self._done[name] = self.pool.submit(self._write, rgba, path)
        return path

    def _write(self, rgba, path: Path) -> bytes:
        from .plot.png import encode_png

        png = encode_png(rgba, self.dpi)
        path.write_bytes(png)
        return png

    def __contains__(self, name: object) -> bool:
        return name in self._done

    def png(self, name: str) -> bytes:
        """The PNG bytes of figure ``name`` once written (errors of the writing raise here)."""
        done = self._done[name]
        return done.result(name) if isinstance(done, ChildFigure) else done.result()

    def paths(self) -> list[Path]:
        """Every file written, in the order added; waits for all of them."""
        for name, done in self._done.items():
            if isinstance(done, ChildFigure):
                done.result(name)
            else:
                done.result()
        return [self.folder / name for name in self._done]


STAGE_FIGURES = ("filters.png", "conv.png", "activated.png", "pooled.png", "overview.png")
"""The figures every run writes, in the order they are drawn."""

CHILD_FIGURES = ("conv.png", "overview.png")
"""The stage figures a forked child process draws while the run's own process draws the others
and report.html's own pictures (about half the drawing each: on the bundled sample the child's
two take 1.3 s, the parent's three and the report's three pictures 1.25 s), where
:func:`can_fork`."""


def can_fork() -> bool:
    """Whether a run may draw some figures in a forked child: on Linux, with more than one CPU
    to run it on, called from the main thread of a process whose only other threads are
    convlens' own idle helpers (named ``convlens-...``). A forked child has only the thread that
    forked; a lock another thread held at that moment (a notebook's or a server's) would never
    be released in it, so anywhere else the figures are drawn in this process."""
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    if any(thread is not threading.main_thread() and not thread.name.startswith("convlens-")
           for thread in threading.enumerate()):
        return False
    try:
        return len(os.sched_getaffinity(0)) > 1
    except OSError:
        return False


class ChildFigure:
    """Figures drawn into files of a folder by a forked child process: :meth:`start` forks,
    the child draws each figure, writes its PNG and exits; :meth:`result` of a figure waits for
    the child and reads the file. If the child failed, the figures are drawn again here, so a
    failure shows as it would without a child (and a drawing error is raised here)."""

    def __init__(self, folder: Path, draws: Mapping[str, Callable[[], Figure]],
                 dpi: float = FIGURE_DPI) -> None:
        self.folder = Path(folder)
        self.draws = dict(draws)
        self.dpi = dpi
        self._pid: int | None = None
        self._finished = False

    def start(self) -> None:
        """Fork the child that draws the figures (call before starting any thread that the
        child would need: it only draws and writes)."""
        from .plot.png import draw_rgba, encode_png

        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: draw, write, leave without running anything of the parent's
            code = 1
            try:
                for name, draw in self.draws.items():
                    (self.folder / name).write_bytes(encode_png(draw_rgba(draw(), self.dpi),
                                                                self.dpi))
                code = 0
            finally:
                os._exit(code)
        self._pid = pid

    def done(self) -> bool:
        """Always: the child's figures hold no memory of this process."""
        return True

    def reap(self) -> None:
        """Wait for the child if nothing did yet (after an error: its files are not used)."""
        if not self._finished and self._pid is not None:
            os.waitpid(self._pid, 0)
        self._finished = True

    def result(self, name: str) -> bytes:
        """The PNG bytes of figure ``name`` (waiting for the child first)."""
        self._finish()
        return (self.folder / name).read_bytes()

    def _finish(self) -> None:
        if self._finished:
            return
        ok = False
        if self._pid is not None:
            _, status = os.waitpid(self._pid, 0)
            ok = os.waitstatus_to_exitcode(status) == 0
        self._finished = True
        if not ok:  # drawn here instead, with any error raised here
            from .plot.png import draw_rgba, encode_png

            for name, draw in self.draws.items():
                (self.folder / name).write_bytes(encode_png(draw_rgba(draw(), self.dpi),
                                                            self.dpi))


class Pictures(Mapping[str, bytes]):
    """The PNG bytes of a run's figures by name without ``.png`` (what report.html embeds),
    each read only when asked for, so the report draws its own pictures while the run's are
    still being drawn or written."""

    def __init__(self, files: FigureFiles, names: Sequence[str]) -> None:
        self.files = files
        self.names = [name.removesuffix(".png") for name in names if name in files]

    def __getitem__(self, key: str) -> bytes:
        if key not in self.names:
            raise KeyError(key)
        return self.files.png(f"{key}.png")

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def stage_figures(stages: Stages, dpi: float = FIGURE_DPI) -> dict[str, Callable[[], Figure]]:
    """How to draw each of :data:`STAGE_FIGURES` (called one at a time, so only one figure is
    in memory); maps are reduced to the pixels their panels have at ``dpi``."""
    from .plot import plot_kernels, plot_maps, plot_overview

    config = stages.config
    names = stages.kernel_names
    arrays = stages.arrays
    pool_note = (
        f"{config.pool_type.value} pool {config.pool}x{config.pool}, "
        f"stride {config.effective_pool_stride}" if config.pool else "no pooling: equals activated"
    )
    return {
        "filters.png": lambda: plot_kernels(arrays.kernels, names),
        "conv.png": lambda: plot_maps(arrays.conv, names, "conv: kernel slid over the input "
                                      "(cross-correlation); red > 0 > blue", signed=True,
                                      dpi=dpi),
        "activated.png": lambda: plot_maps(arrays.activated, names,
                                           f"activated: {config.activation.value} of conv",
                                           dpi=dpi),
        "pooled.png": lambda: plot_maps(arrays.pooled, names, f"pooled: {pool_note}", dpi=dpi),
        "overview.png": lambda: plot_overview(stages),
    }


def write_figures(stages: Stages, out_dir: Path) -> list[Path]:
    """``filters.png``, ``conv.png``, ``activated.png``, ``pooled.png`` and ``overview.png``."""
    with ThreadPoolExecutor(1, thread_name_prefix="convlens-png") as pool:
        files = FigureFiles(Path(out_dir), pool)
        for name, draw in stage_figures(stages, files.dpi).items():
            files.add(name, draw)
        return files.paths()


def estimate_run_bytes(
    image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], config: LayerConfig, *,
    figures: bool = True, archive: bool = False,
) -> tuple[int, LayerEstimate]:
    """Memory of a whole run of an image ``(C, H, W)`` through kernels ``(K, C, kh, kw)``, in
    bytes, from shapes alone, and the layer's :class:`~convlens.layers.LayerEstimate`.

    On top of the layer run: the statistics and display copies made of the stages (once more
    their size), with ``figures`` one figure at a time (:data:`FIGURE_BYTES`), and with
    ``archive`` the stages written into memory as an npz and a zip (the page's downloads).
    """
    estimate = estimate_layer(image_shape, kernel_shape, config)
    total = estimate.memory + estimate.output_bytes
    if figures:
        total += FIGURE_BYTES
    if archive:
        total += 2 * (estimate.output_bytes + estimate.input_bytes)
    return total, estimate


def check_run_budget(
    image_shape: tuple[int, ...], kernel_shape: tuple[int, ...], config: LayerConfig, *,
    figures: bool = True, archive: bool = False,
) -> LayerEstimate:
    """Refuse a run (see :func:`estimate_run_bytes`) over the kernel-count limit or the budget
    (:mod:`convlens.limits`) before anything is computed; the one-line message names the image,
    the kernels, the maps and what they need."""
    kernels = int(kernel_shape[0])
    kh, kw = kernel_shape[2:]
    total, estimate = estimate_run_bytes(image_shape, kernel_shape, config, figures=figures,
                                         archive=archive)
    what = (f"a run of a {'x'.join(map(str, image_shape))} image with {kernels} {kh}x{kw} "
            f"kernel{'s' * (kernels != 1)} ({'x'.join(map(str, estimate.sizes[0].outputs))} "
            "maps)")
    check_layer_budget(image_shape, kernel_shape, config, total - estimate.memory, what)
    return estimate


def run_settings(
    source: Path | str,
    kernels: Sequence[Kernel],
    config: LayerConfig,
    stages: Stages,
    mode: ColorMode,
    max_side: int | None,
    device: str | torch.device,
    command: str | None,
) -> dict:
    """Everything needed to reproduce a run, JSON-ready (``torch_version`` is the installed
    torch's, read without importing it)."""
    return {
        "convlens_version": __version__,
        "command": command,
        "image": str(source),
        "mode": mode.value,
        "max_side": max_side,
        "device": str(device),
        "kernels": [
            {"name": name, "spec": kernel.to_text(), "shape": list(kernel.weights.shape)}
            for name, kernel in zip(stages.kernel_names, kernels)
        ],
        "layer": config.to_dict(),
        "shapes": {key: list(getattr(stages.arrays, key).shape) for key in Stages.STAGE_NAMES},
        "sizes": [step.formula() for step in stages.sizes],
        "torch_version": installed_version("torch"),
        "python_version": platform.python_version(),
    }


def installed_version(package: str) -> str | None:
    """The installed version of ``package`` (None if it is not installed), without importing
    it."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def run_image(
    source: Path | str,
    kernels: Sequence[Kernel],
    config: LayerConfig,
    out_dir: Path,
    *,
    mode: str | ColorMode = ColorMode.GRAY,
    max_side: int | None = None,
    device: str | torch.device = "auto",
    force: bool = False,
    command: str | None = None,
    winners: bool = False,
    explain_at: tuple[int, int] | None = None,
    report: bool = True,
    npz: NpzChoice = NpzChoice(),
    notify: Callable[[str], None] | None = None,
) -> RunResult:
    """Load ``source``, compute its stages and write every result file into ``out_dir``.

    The folder is checked before any work and filled all at once (:func:`staged_dir`): an
    error leaves nothing behind. ``winners`` adds
    ``winners.png`` (which pixel won each max-pool window); ``explain_at`` ``(row, col)`` adds
    ``explain.json`` and ``explain.png`` for that conv pixel of every kernel; ``report`` writes
    the self-contained ``report.html``. ``npz`` chooses what ``stages.npz`` holds (by default
    the float32 contract); ``notify`` is called with :func:`stages_npz_note` before a large one
    is written.
    """
    started = time.perf_counter()
    drawing = preload_drawing()
    check_out_dir(out_dir, force)
    check_at_most(len(kernels), MAX_KERNELS, "the number of kernels",
                  "run them in groups of at most that many")
    color = parse_mode(mode)
    if isinstance(device, str):
        check_device_name(device)  # a wrong name fails before the image is read
    image = load_image_array(source, color, max_side)
    kernel_shape = tuple(kernel_array(kernels, image.shape[0]).shape)
    check_run_budget(tuple(image.shape), kernel_shape, config)
    target = stage_device(device, image.shape, kernel_shape, config)
    stages = compute_stages(image, kernels, config, target)
    explanations = check_teaching_options(stages, winners, explain_at)
    note = stages_npz_note({name: tuple(getattr(stages.arrays, name).shape)
                            for name in Stages.STAGE_NAMES}, npz)
    if note is not None and notify is not None:
        notify(note)
    result = RunResult(Path(source), out_dir, stages)
    drawing.join()
    draws = stage_figures(stages)
    # a forked child draws some figures (forked before any thread starts here), the npz is
    # written and the PNGs compressed on worker threads while the others are drawn
    with staged_dir(out_dir, force) as folder:
        child = None
        if can_fork():
            child = ChildFigure(folder, {name: draws[name] for name in CHILD_FIGURES})
            child.start()
        try:
            with ThreadPoolExecutor(2, thread_name_prefix="convlens-write") as pool:
                written = _write_run(stages, kernels, config, source, folder, pool, draws,
                                     child, npz=npz, winners=winners, explain_at=explain_at,
                                     explanations=explanations, report=report,
                                     command=command, settings=(color, max_side, target),
                                     started=started, result=result)
        finally:
            if child is not None:
                child.reap()
    result.files = [out_dir / path.name for path in written]
    return result


def _write_run(stages: Stages, kernels: Sequence[Kernel], config: LayerConfig,
               source: Path | str, folder: Path, pool: ThreadPoolExecutor,
               draws: dict[str, Callable[[], Figure]], child: ChildFigure | None, *,
               npz: NpzChoice, winners: bool, explain_at: tuple[int, int] | None,
               explanations: list[PixelExplanation | PooledExplanation], report: bool,
               command: str | None, settings: tuple[ColorMode, int | None, str],
               started: float, result: RunResult) -> list[Path]:
    """Every file of :func:`run_image` into the staging ``folder``: the files written."""
    from .plot.explain import plot_winners

    color, max_side, target = settings
    saved = pool.submit(save_stages, stages, folder / STAGES_FILE, npz)
    files = FigureFiles(folder, pool)
    for name, draw in draws.items():
        if child is not None and name in child.draws:
            files.add_drawn_elsewhere(name, child)
        else:
            files.add(name, draw)
    written: list[Path] = []
    if winners:
        files.add("winners.png", lambda: plot_winners(stages))
    if explain_at is not None:
        written += write_explanations(explanations, folder, explain_at, files)
    if report:
        pictures = Pictures(files, (*STAGE_FIGURES, "winners.png"))
        written.append(write_report(
            stages, folder, source=printable(Path(source).name),
            command=None if command is None else printable(command), pixel=explain_at,
            descriptions=[kernel.description for kernel in kernels], figures=pictures,
            explained=explanations))
    npz_path = saved.result()
    written = [*files.paths(), *([npz_path] if npz_path else []), *written]
    run = run_settings(source, kernels, config, stages, color, max_side, target, command)
    result.seconds = time.perf_counter() - started
    run["seconds"] = round(result.seconds, 3)
    if not npz.is_default:
        run["stages_npz"] = {"arrays": list(npz.arrays), "dtype": npz.dtype}
    run["files"] = sorted([*(path.name for path in written), RUN_FILE])
    (folder / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    written.append(folder / RUN_FILE)
    return written


def write_report(stages: Stages, out_dir: Path, **options: Any) -> Path:
    """A run's ``report.html`` (:func:`convlens.report.write_report`, the renderer imported
    when the first report is written)."""
    from . import report

    return report.write_report(stages, out_dir, **options)


def check_teaching_options(
    stages: Stages, winners: bool, explain_at: tuple[int, int] | None
) -> list[PixelExplanation | PooledExplanation]:
    """Fail before anything is written when ``winners`` or ``explain_at`` cannot apply; the
    explanations of ``explain_at`` (:func:`explain_run_pixel`, worked out once), or none."""
    config = stages.config
    if winners and (config.pool is None or config.pool_type.value != "max"):
        raise ConfigError("winners=True needs max pooling (pool=N, pool_type='max')",
                          options=[Option("winners=True", "--winners"),
                                   Option("pool=N", "--pool N"),
                                   Option("pool_type='max'", "--pool-type max")])
    return [] if explain_at is None else explain_run_pixel(stages, explain_at)


def explain_run_pixel(
    stages: Stages, at: tuple[int, int]
) -> list[PixelExplanation | PooledExplanation]:
    """Every kernel's arithmetic for conv pixel ``at`` (true convolution too), each followed
    by the pooled cell it feeds; a pixel outside the map raises a one-line error."""
    items: list[PixelExplanation | PooledExplanation] = []
    for index, name in enumerate(stages.kernel_names):
        arrays = stages.arrays
        pixel = explain_pixel(arrays.input, arrays.kernels, stages.config, index, *at,
                              kernel_name=name, flip=True)
        items.append(pixel)
        if pixel.pooled_cell is not None:
            items.append(explain_pooled(arrays.input, arrays.kernels, stages.config, index,
                                        *pixel.pooled_cell, kernel_name=name))
    return items


def write_explanations(items: Sequence[PixelExplanation | PooledExplanation], out_dir: Path,
                       at: tuple[int, int], files: FigureFiles) -> list[Path]:
    """``explain.json`` (the explanations of conv pixel ``at``, :func:`explain_run_pixel`),
    and ``explain.png`` (the same drawn) added to ``files``; returns the JSON's path."""
    data = {"at": list(at), "explanations": [item.to_dict() for item in items]}
    json_path = out_dir / "explain.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    from .plot.explain import plot_explanations

    files.add("explain.png", lambda: plot_explanations(items))
    return [json_path]


def output_folders(sources: Sequence[Path], out: Path | None, default_root: Path) -> list[Path]:
    """Result folder per image: ``out`` itself for one image, ``<out>/<name>/`` for several.

    Names come from :func:`convlens.outputs.unique_names` (the stem, the whole file name where
    stems repeat, then ``-2``, ``-3``), so no result overwrites another.
    """
    if len(sources) == 1:
        return [out if out is not None else default_root / unique_names(sources)[0]]
    root = out if out is not None else default_root
    return [root / name for name in unique_names(sources)]
