"""``convlens train`` as a library call: :func:`train` runs :func:`convlens.train.fit`,
shows its table (and progress bars) on a rich console, and draws the run's figures
(``curves.png``, ``confusion.png``, ``filters-evolution.gif``) beside the model it wrote."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..errors import Surface, worded
from ..outputs import printable, save_figure, write_file
from ..plot.training import plot_confusion, plot_curves, save_filters_gif
from ..train import BatchUpdate, EpochCallback, Tone, TrainConfig, TrainEvents, TrainResult, fit
from ..train.files import CONFUSION_FILE, CURVES_FILE, FILTERS_GIF

STYLES = {Tone.INFO: None, Tone.WARNING: "yellow", Tone.RESULT: "bold"}


def train(
    config: TrainConfig | None = None,
    console: Console | None = None,
    progress: bool | None = None,
    on_epoch_end: EpochCallback | None = None,
    surface: Surface = "python",
) -> TrainResult:
    """Train as ``config`` says (:func:`convlens.train.fit`) and write the run folder with
    its figures.

    ``console`` receives the per-epoch table and notes (rank 0 only; ``None``: silent);
    ``progress`` shows rich progress bars (default: when ``console`` is a terminal).
    ``on_epoch_end(record)`` is called after every epoch with that epoch's metrics.
    ``surface``: whose words the notes use for a setting (``amp=True``, or the CLI's ``--amp``).
    """
    events = ConsoleEvents(console, progress, surface)
    result = fit(config, events, on_epoch_end)
    if result.main:
        result.files += write_figures(result)
        for line, tone in summary(result):
            events.note(line, tone)
    return result


def write_figures(result: TrainResult) -> list[Path]:
    """``curves.png``, ``confusion.png`` (the kept model on the test split) and, when the run
    asks for it, ``filters-evolution.gif`` into the run folder; returns the paths written."""
    config, out_dir = result.config, result.out_dir
    name = printable(f"{config.model} on {config.data}")
    baseline = result.baseline
    reference = ("SVC baseline, test split", baseline["test_accuracy"]) if baseline else None
    best = result.best_epoch
    written = [save_figure(plot_curves(result.history, best, reference,
                                       title=f"{name}: loss and accuracy per epoch",
                                       test_accuracy=result.metrics.get("test_accuracy")),
                           out_dir / CURVES_FILE)]
    if result.evaluation is not None:
        evaluation = result.evaluation
        figure = plot_confusion(evaluation.confusion,
                                [printable(n) for n in evaluation.class_names],
                                title=f"{name}, test split, kept model (epoch {best})")
        written.append(save_figure(figure, out_dir / CONFUSION_FILE))
    if config.filters_gif and result.filters and result.first_conv is not None:
        layer = result.first_conv
        written.append(write_file(out_dir / FILTERS_GIF, lambda path: save_filters_gif(
            result.filters, path, layer=layer)))
    return written


def summary(result: TrainResult) -> list[tuple[str, Tone]]:
    """The closing lines: the kept model (chosen on val, measured once on test) against the
    last epoch and the baseline, then the time, the speed and the files written."""
    metrics = result.metrics
    line = (f"kept model: epoch {metrics['best_epoch']}, val accuracy "
            f"{100 * metrics['val_accuracy']:.2f}% (last epoch "
            f"{100 * metrics['final_val_accuracy']:.2f}%); test accuracy "
            f"{100 * metrics['test_accuracy']:.2f}%")
    baseline = metrics.get("baseline")
    if baseline is not None:
        delta = metrics["test_accuracy"] - baseline["test_accuracy"]
        line += (f"; SVC baseline on the same split (C and gamma chosen on val): test "
                 f"accuracy {100 * baseline['test_accuracy']:.2f}% "
                 f"({'+' if delta >= 0 else ''}{100 * delta:.2f} points)")
    files = ", ".join(path.name for path in result.files)
    return [(line, Tone.RESULT),
            (f"{metrics['seconds']:.1f} s of epochs ({metrics['wall_seconds']:.1f} s in all), "
             f"{metrics['images_per_second']:,.0f} images/s training; wrote {files} to "
             f"{result.out_dir}/", Tone.INFO)]


class ConsoleEvents(TrainEvents):
    """The run on a rich console: notes, a fixed-width table with one row per epoch (airbench
    style; ``*`` marks a new best) and, with ``progress``, transient bars for the epochs and
    the batches of the current one. A ``None`` console shows nothing. Notes name settings in
    ``surface``'s words (:class:`convlens.errors.Worded`)."""

    COLUMNS = (("epoch", 5, "{:d}"), ("train loss", 10, "{:.4f}"), ("train acc", 9, "{:.2%}"),
               ("val loss", 8, "{:.4f}"), ("val acc", 8, "{:.2%}"), ("lr", 8, "{:.5f}"),
               ("img/s", 8, "{:,.0f}"), ("seconds", 7, "{:.2f}"))
    KEYS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
            "images_per_second", "seconds")

    def __init__(self, console: Console | None, progress: bool | None = None,
                 surface: Surface = "python") -> None:
        self.console = console
        self.surface: Surface = surface
        self.batches = bool(console is not None and (
            progress if progress is not None else console.is_terminal))
        self._bars: Progress | None = None
        self._epoch_task: TaskID | None = None
        self._batch_task: TaskID | None = None

    def note(self, text: str, tone: Tone = Tone.INFO) -> None:
        if self.console is not None:
            self.console.print(worded(text, self.surface), style=STYLES[tone], markup=False,
                               highlight=False, soft_wrap=True)

    def begin(self, epochs: int, done: int, steps: int) -> None:
        cells = "  ".join(f"{name:>{width}}" for name, width, _ in self.COLUMNS)
        self.note(cells)
        self.note("-" * len(cells) + "--")
        if not self.batches:
            return
        self._bars = Progress(TextColumn("{task.description:>7}"), BarColumn(),
                              MofNCompleteColumn(), TextColumn("{task.fields[loss]}"),
                              TextColumn("{task.fields[acc]}"),
                              TextColumn("{task.fields[ips]} img/s"), TimeElapsedColumn(),
                              TimeRemainingColumn(), console=self.console, transient=True)
        self._bars.start()
        self._epoch_task = self._bars.add_task("epochs", total=epochs, completed=done, loss="",
                                               acc="", ips="")
        self._batch_task = self._bars.add_task("batches", total=steps, loss="", acc="", ips="")

    def batch(self, update: BatchUpdate) -> None:
        if self._bars is None or self._batch_task is None:
            return
        if update.step == 1:
            self._bars.reset(self._batch_task, total=update.steps,
                             description=f"epoch {update.epoch}")
        ips = f"{update.images_per_second:,.0f}"
        if update.loss is not None and update.accuracy is not None:
            self._bars.update(self._batch_task, advance=1, ips=ips, loss=f"loss {update.loss:.3f}",
                              acc=f"acc {100 * update.accuracy:.1f}%")
        else:
            self._bars.update(self._batch_task, advance=1, ips=ips)

    def epoch(self, record: dict, improved: bool) -> None:
        cells = "  ".join(f"{fmt.format(record[key]):>{width}}"
                          for (_, width, fmt), key in zip(self.COLUMNS, self.KEYS))
        self.note(cells + ("  *" if improved else ""))
        if self._bars is not None and self._epoch_task is not None:
            self._bars.update(self._epoch_task, advance=1,
                              loss=f"val loss {record['val_loss']:.3f}",
                              acc=f"val acc {100 * record['val_accuracy']:.2f}%",
                              ips=f"{record['images_per_second']:,.0f}")

    def end(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None


__all__ = ["ConsoleEvents", "summary", "train", "write_figures"]
