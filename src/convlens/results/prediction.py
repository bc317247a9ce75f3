"""``convlens predict`` as a library call: :func:`predict_files` classifies image files with a
trained model and returns :class:`Predictions`: the top classes of every image that could be
read and the files that could not."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..devices import resolve_device
from ..errors import ConvlensError, Surface
from ..images import iter_image_files, load_image
from ..models import Prediction, load_checkpoint, predict
from ..outputs import prepare_out_dir, printable, write_text

PREDICTIONS_FILE = "predictions.json"


@dataclass
class ImagePrediction:
    """One image file and its top classes, most likely first."""

    path: Path
    top: list[Prediction]

    def to_dict(self) -> dict:
        return {"image": printable(self.path),
                "top": [{"class": p.label, "probability": p.probability} for p in self.top]}


class Failure(NamedTuple):
    """An image file that could not be read, and why: the error itself, for each surface to
    word (:meth:`message`)."""

    path: Path
    error: ConvlensError

    def message(self, surface: Surface = "python") -> str:
        """Why, in ``surface``'s words (the library's settings or the CLI's flags)."""
        return self.error.worded(surface)


@dataclass
class Predictions:
    """The images of one ``predict`` call: ``images`` in the order given (folders expanded),
    and ``failures``, the files that could not be read, each with its error."""

    images: list[ImagePrediction] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Image files found, read or not."""
        return len(self.images) + len(self.failures)

    def to_dict(self) -> list[dict]:
        """The JSON of ``convlens predict --json``: one ``{"image", "top"}`` per image read."""
        return [image.to_dict() for image in self.images]

    def write(self, folder: Path, force: bool = False) -> list[Path]:
        """Write ``predictions.json`` (:meth:`to_dict`) into ``folder``, made if absent (a
        non-empty one only with ``force``); returns its path."""
        prepare_out_dir(folder, force)
        return [write_text(Path(folder) / PREDICTIONS_FILE,
                           json.dumps(self.to_dict(), indent=2) + "\n")]


def predict_files(
    model_path: Path,
    paths: Sequence[Path],
    top_k: int = 5,
    device: str = "auto",
) -> Predictions:
    """The top ``top_k`` classes of every image in ``paths`` (files, or folders of images) by
    the convlens checkpoint at ``model_path``. Any size and colour mode works: images are
    resized to the model's input and converted gray <-> RGB as needed.

    Of several files, one that cannot be read is listed in ``failures`` and the others are
    classified; a single file that cannot be read raises its error.
    """
    opened = load_checkpoint(model_path, device=resolve_device(device))
    found = list(iter_image_files(list(paths)))
    mode = "rgb" if opened.in_channels == 3 else "gray"
    read: list[Path] = []
    images: list = []
    failures: list[Failure] = []
    for path in found:
        try:
            images.append(load_image(path, mode=mode))
            read.append(path)
        except ConvlensError as exc:
            if len(found) == 1:
                raise
            failures.append(Failure(path, exc))
    ranked = predict(opened, images, top_k=top_k) if images else []
    return Predictions([ImagePrediction(path, top) for path, top in zip(read, ranked)],
                       failures)


__all__ = ["PREDICTIONS_FILE", "Failure", "ImagePrediction", "Predictions", "predict_files"]
