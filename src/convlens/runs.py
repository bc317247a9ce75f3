"""One image through one layer, written to a result folder.

:func:`run_image` is what ``convlens run`` does per image: load, compute the stages, write
``filters.png``, ``conv.png``, ``activated.png``, ``pooled.png``, ``overview.png`` (all stages in
one figure), ``stages.npz`` and ``run.json``.
An existing non-empty folder is only reused with ``force=True``; nothing else is ever overwritten.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .devices import resolve_device
from .errors import ConfigError
from .explain import PixelExplanation, explain_pixel, explain_pooled
from .images import ColorMode, load_image, parse_mode
from .kernels import Kernel
from .layers import LayerConfig, Stages, compute_stages
from .plot import plot_kernels, plot_maps, plot_overview
from .plot.explain import plot_explanations, plot_winners
from .report import write_report

STAGES_FILE = "stages.npz"
RUN_FILE = "run.json"
FIGURE_DPI = 110


@dataclass
class RunResult:
    """What :func:`run_image` produced: the stages, the folder and the files in it."""

    source: Path
    out_dir: Path
    stages: Stages
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def _repr_png_(self) -> bytes:
        return self.stages._repr_png_()


def check_out_dir(path: Path, force: bool = False) -> None:
    """Raise unless ``path`` is absent, an empty folder, or ``force`` allows reusing it."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output path {path} exists and is not a folder")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise ConfigError(f"output folder {path} is not empty; pass --force to overwrite it")


def prepare_out_dir(path: Path, force: bool = False) -> Path:
    """Create ``path``; an existing non-empty folder is reused only when ``force`` is true."""
    check_out_dir(path, force)
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_stages(stages: Stages, path: Path) -> Path:
    """Write the npz contract (float32 ``input, kernels, conv, activated, pooled``)."""
    np.savez(path, **stages.to_numpy())
    return path


def load_stages(path: Path) -> dict[str, np.ndarray]:
    """Read a ``stages.npz`` back as a dict of arrays."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_figures(stages: Stages, out_dir: Path) -> list[Path]:
    """``filters.png``, ``conv.png``, ``activated.png``, ``pooled.png`` and ``overview.png``."""
    config = stages.config
    names = stages.kernel_names
    pool_note = (
        f"{config.pool_type.value} pool {config.pool}x{config.pool}, "
        f"stride {config.effective_pool_stride}" if config.pool else "no pooling: equals activated"
    )
    figures = {
        "filters.png": plot_kernels(stages.kernels, names),
        "conv.png": plot_maps(stages.conv, names, "conv: kernel slid over the input "
                              "(cross-correlation); red > 0 > blue", signed=True),
        "activated.png": plot_maps(stages.activated, names,
                                   f"activated: {config.activation.value} of conv"),
        "pooled.png": plot_maps(stages.pooled, names, f"pooled: {pool_note}"),
        "overview.png": plot_overview(stages),
    }
    paths = []
    for name, figure in figures.items():
        path = out_dir / name
        figure.savefig(path, dpi=FIGURE_DPI)
        paths.append(path)
    return paths


def run_settings(
    source: Path | str,
    kernels: Sequence[Kernel],
    config: LayerConfig,
    stages: Stages,
    mode: ColorMode,
    max_side: int | None,
    device: torch.device,
    command: str | None,
) -> dict:
    """Everything needed to reproduce a run, JSON-ready."""
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
        "shapes": {key: list(getattr(stages, key).shape) for key in Stages.STAGE_NAMES},
        "sizes": [step.formula() for step in stages.sizes],
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
    }


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
) -> RunResult:
    """Load ``source``, compute its stages and write every result file into ``out_dir``.

    ``winners`` adds
    ``winners.png`` (which pixel won each max-pool window); ``explain_at`` ``(row, col)`` adds
    ``explain.json`` and ``explain.png`` for that conv pixel of every kernel; ``report`` writes
    the self-contained ``report.html``.
    """
    started = time.perf_counter()
    check_out_dir(out_dir, force)
    color = parse_mode(mode)
    target = resolve_device(device)
    image = load_image(source, color, max_side)
    stages = compute_stages(image, kernels, config, target)
    check_teaching_options(stages, winners, explain_at)
    prepare_out_dir(out_dir, force)
    result = RunResult(Path(source), out_dir, stages)
    result.files += write_figures(stages, out_dir)
    result.files.append(save_stages(stages, out_dir / STAGES_FILE))
    if winners:
        result.files += write_winners(stages, out_dir)
    if explain_at is not None:
        result.files += write_explanations(stages, out_dir, explain_at)
    if report:
        result.files.append(write_report(
            stages, out_dir, source=Path(source).name, command=command, pixel=explain_at,
            descriptions=[kernel.description for kernel in kernels]))
    settings = run_settings(source, kernels, config, stages, color, max_side, target, command)
    result.seconds = time.perf_counter() - started
    settings["seconds"] = round(result.seconds, 3)
    settings["files"] = sorted(path.name for path in [*result.files, out_dir / RUN_FILE])
    (out_dir / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    result.files.append(out_dir / RUN_FILE)
    return result


def check_teaching_options(
    stages: Stages, winners: bool, explain_at: tuple[int, int] | None
) -> None:
    """Fail before anything is written when ``winners`` or ``explain_at`` cannot apply."""
    config = stages.config
    if winners and (config.pool is None or config.pool_type.value != "max"):
        raise ConfigError("--winners needs max pooling (--pool N --pool-type max)")
    if explain_at is not None:
        explain_pixel(stages.input, stages.kernels, config, 0, *explain_at)


def write_winners(stages: Stages, out_dir: Path) -> list[Path]:
    """``winners.png``: which activated pixel won each max-pool window, per kernel."""
    path = out_dir / "winners.png"
    plot_winners(stages.activated, stages.config, stages.kernel_names).savefig(
        path, dpi=FIGURE_DPI)
    return [path]


def write_explanations(stages: Stages, out_dir: Path, at: tuple[int, int]) -> list[Path]:
    """``explain.json`` (every kernel's arithmetic for conv pixel ``at``, with the pooled cell
    it feeds) and ``explain.png`` (the same drawn)."""
    items: list = []
    for index, name in enumerate(stages.kernel_names):
        pixel = explain_pixel(stages.input, stages.kernels, stages.config, index, *at,
                              kernel_name=name, flip=True)
        items.append(pixel)
        if pixel.pooled_cell is not None:
            items.append(explain_pooled(stages.input, stages.kernels, stages.config, index,
                                        *pixel.pooled_cell, kernel_name=name))
    data = {"at": list(at), "explanations": [
        {"what": "conv pixel" if isinstance(item, PixelExplanation) else "pooled cell",
         **item.to_dict()}
        for item in items]}
    json_path = out_dir / "explain.json"
    json_path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    figure_path = out_dir / "explain.png"
    plot_explanations(items).savefig(figure_path, dpi=FIGURE_DPI)
    return [json_path, figure_path]


def output_folders(sources: Sequence[Path], out: Path | None, default_root: Path) -> list[Path]:
    """Result folder per image: ``out`` itself for one image, ``<out>/<stem>/`` for several.

    Images sharing a stem get ``-2``, ``-3`` suffixes so no result overwrites another.
    """
    if len(sources) == 1:
        return [out if out is not None else default_root / sources[0].stem]
    root = out if out is not None else default_root
    seen: dict[str, int] = {}
    folders = []
    for source in sources:
        stem = source.stem
        seen[stem] = seen.get(stem, 0) + 1
        folders.append(root / (stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"))
    return folders
