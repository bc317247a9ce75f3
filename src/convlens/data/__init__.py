"""Image classification data sets as in-memory tensors, split into train and val.

Sources (a *data spec* string, :mod:`convlens.data.specs`):

* ``digits``: scikit-learn's bundled 8x8 digits (1797 images, no download), split 80/20
  (:mod:`~convlens.data.digits`).
* ``PATH`` or ``folder:PATH``: an image-folder tree, one sub-folder per class, either with
  ``train/`` and ``val/`` (or ``valid``, ``validation``, ``test``) sub-trees or split 80/20
  (:mod:`~convlens.data.folders`).
* ``mnist:PATH`` / ``fashion-mnist:PATH``: the IDX files (gzipped or not); ``t10k`` is val
  (:mod:`~convlens.data.idx`).
* ``cifar10:PATH`` / ``cifar100:PATH``: the CIFAR python batches; the test batch is val
  (:mod:`~convlens.data.cifar`).

Every split made here is seeded and stratified (each class split in the same proportion,
:mod:`~convlens.data.splits`), so the val images never change with the training seed. Images
are kept as ``(N, C, H, W)`` uint8 (or float32 for digits, whose 17 gray levels are not bytes)
and turned into floats in [0, 1] a batch at a time (:mod:`~convlens.data.sets`); augmentation
works on those float batches (:mod:`~convlens.data.augment`). Nothing is downloaded unless
asked (:func:`download_dataset`, :mod:`~convlens.data.download`). :mod:`~convlens.data.load`
holds the two ways in: :func:`load_data` and :func:`load_eval_set`.
"""

from __future__ import annotations

from .augment import Augment, augment_batch
from .cifar import read_cifar_batch
from .download import DOWNLOADS, Download, download_dataset
from .folders import FolderScan, scan_folder
from .idx import read_idx
from .load import load_data, load_eval_set
from .sets import ImageSet, channel_stats, conform
from .specs import DataKind, absolute_spec, parse_data_spec
from .splits import DataSplits, stratified_split

__all__ = [
    "DOWNLOADS",
    "Augment",
    "DataKind",
    "DataSplits",
    "Download",
    "FolderScan",
    "ImageSet",
    "absolute_spec",
    "augment_batch",
    "channel_stats",
    "conform",
    "download_dataset",
    "load_data",
    "load_eval_set",
    "parse_data_spec",
    "read_cifar_batch",
    "read_idx",
    "scan_folder",
    "stratified_split",
]
