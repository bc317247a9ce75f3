"""What the server keeps between requests: images, caches and the one-at-a-time gate.

The page sends its whole state with every request, so nothing here is needed to answer one; it
only saves work. The loaded image is cached per (image, mode, working size) and stage results
per kernel (display arrays only, never full-size maps), so editing one kernel recomputes one
kernel. One computation runs at a time, and a request that a newer one from the same page
overtook while it waited is dropped without computing (latest edit wins, work never piles up).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from anyio import to_thread

from ..config import LayerConfig
from ..errors import ImageError, KernelError
from ..images import SAMPLES, load_image, sample_path
from ..kernels import Kernel
from .cache import LRU
from .limits import MAX_PIXELS, MAX_UPLOAD_BYTES, check_working_side
from .schemas import StateIn, to_kernels

if TYPE_CHECKING:
    from .model_panel import ModelPanel

MAX_STORED_IMAGES = 8
"""Uploads kept on disk (oldest removed first)."""
IMAGE_CACHE_SIZE = 6
"""Loaded images (float tensors) kept in memory."""
IMAGE_CACHE_BYTES = 512 * 1024 * 1024
"""Bytes of loaded images kept in memory: at full size a 24 Mpx photo is 96 MB gray and 288 MB
rgb (the model panel's), so the count alone would not bound them."""
STAGE_CACHE_SIZE = 4096
"""Most per-kernel display payloads kept in memory (a few hundred KiB each at the default
display size, up to 3 MiB at the largest)."""
STAGE_CACHE_BYTES = 160 * 1024 * 1024
"""Bytes of per-kernel display payloads kept in memory. Every kernel a page shows must stay
cached between its edits, or an edit recomputes all of its kernels: 50 pages of 3 kernels at
the default display size take 45 MiB, one page of 16 kernels at the largest 48 MiB."""


@dataclasses.dataclass
class StoredImage:
    """An image the page may use: a bundled sample or an upload written to the server's folder."""

    id: str
    name: str
    path: Path

    def info(self, image: torch.Tensor) -> dict:
        """What the page shows of it: id, file name and loaded shape ``(C, H, W)``."""
        return {"id": self.id, "name": self.name, "shape": list(image.shape)}


class ImageStore:
    """Uploaded files on disk (a private temporary folder) and loaded tensors in memory.

    Images go through :func:`convlens.images.load_image` from a file, so every guard of the
    library (pixel limit, truncated files, EXIF orientation, transparency) applies to uploads.
    """

    def __init__(self, max_pixels: int = MAX_PIXELS) -> None:
        self.max_pixels = max_pixels
        self._folder = tempfile.TemporaryDirectory(prefix="convlens-serve-")
        self.folder = Path(self._folder.name)
        self._images: dict[str, StoredImage] = {
            f"sample-{name}": StoredImage(f"sample-{name}", f"{name}.png", sample_path(name))
            for name in SAMPLES
        }
        self._uploads = LRU(MAX_STORED_IMAGES, on_evict=self.forget)
        self._loaded = LRU(IMAGE_CACHE_SIZE, max_bytes=IMAGE_CACHE_BYTES, weigh=_tensor_bytes)
        self._load_locks: dict[tuple, threading.Lock] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def add_upload(self, data: bytes, name: str) -> tuple[StoredImage, bool]:
        """Store an upload under an id made from its bytes; also whether it is new (the same
        bytes uploaded again share the first copy)."""
        digest = hashlib.sha256(data).hexdigest()[:24]
        image_id = f"upload-{digest}"
        existing = self._uploads.get(image_id)
        if existing is not None:
            return existing, False
        name = "".join(char for char in name if char.isprintable())  # shown in one line
        suffix = Path(name).suffix.lower()[:8]
        suffix = suffix if suffix[1:].isascii() and suffix[1:].isalnum() else ""
        path = self.folder / f"{digest}{suffix}"
        path.write_bytes(data)
        stored = StoredImage(image_id, Path(name).name[:80] or "upload", path)
        with self._lock:
            self._images[image_id] = stored
        self._uploads.put(image_id, stored)
        return stored, True

    def get(self, image_id: str) -> StoredImage:
        with self._lock:
            stored = self._images.get(image_id)
        if stored is None:
            raise ImageError(f"unknown image {image_id!r}; load an image or pick a sample again")
        return stored

    def load(self, image_id: str, mode: str, max_side: int | None) -> torch.Tensor:
        """The image ``(C, H, W)`` in [0, 1], loaded once per (image, mode, working size);
        ``max_side`` None: full size."""
        check_working_side(max_side)
        stored = self.get(image_id)
        key = (image_id, mode, max_side)
        cached = self._loaded.get(key)
        if cached is not None:
            return cached
        with self._lock:
            lock = self._load_locks.setdefault(key, threading.Lock())
        with lock:
            cached = self._loaded.get(key)
            if cached is None:
                cached = load_image(stored.path, mode, max_side, max_pixels=self.max_pixels)
                self.loads += 1
                self._loaded.put(key, cached)
        return cached

    def forget(self, stored: StoredImage) -> None:
        """Drop an upload (its file and id)."""
        with self._lock:
            self._images.pop(stored.id, None)
        stored.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._folder.cleanup()


class LatestWins:
    """One computation at a time; a waiting request that a newer one overtook is dropped.

    Each page sends a client id and an increasing sequence number. :meth:`run` waits for the
    lock and then computes only if no newer request from that page has arrived meanwhile.
    Work without a client id (downloads) is never dropped, only queued behind the lock, so
    heavy requests never run side by side on the CPU.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._latest: dict[str, int] = {}
        self.computed = 0

    def is_stale(self, client: str, seq: int) -> bool:
        return bool(client) and seq < self._latest.get(client, seq)

    async def run(self, client: str, seq: int, work: Callable[[], Any]) -> Any | None:
        """``work()`` in a worker thread, or None if a newer request from ``client`` came."""
        if client:
            self._latest[client] = max(seq, self._latest.get(client, seq))
            if len(self._latest) > 1000:
                self._latest.clear()
        async with self._lock:
            if self.is_stale(client, seq):
                return None
            self.computed += 1
            return await to_thread.run_sync(work)


def _tensor_bytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def payload_bytes(payload: dict) -> int:
    """Bytes of one kernel's cached display maps (``{"arrays": {stage: uint8 array}, ...}``)."""
    return sum(array.nbytes for array in payload["arrays"].values()) + 1024


@dataclasses.dataclass
class Session:
    """Everything one server keeps: where stages run (``device``), the images, the gate, the
    per-kernel stage payloads, the model panel, and the upload limit in bytes."""

    device: torch.device
    images: ImageStore
    models: ModelPanel
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    gate: LatestWins = dataclasses.field(default_factory=LatestWins)
    payloads: LRU = dataclasses.field(default_factory=lambda: LRU(
        STAGE_CACHE_SIZE, max_bytes=STAGE_CACHE_BYTES, weigh=payload_bytes))

    def inputs(self, body: StateIn) -> tuple[torch.Tensor, list[Kernel], LayerConfig]:
        """The page's state as library objects: the image ``(C, H, W)``, kernels, layer."""
        image = self.images.load(body.image, body.mode, body.max_side)
        kernels = to_kernels(body.kernels)
        for number, kernel in enumerate(kernels, start=1):
            if kernel.channels > image.shape[0]:
                raise KernelError(f"kernel {number} ({kernel.name}) has R, G and B grids but the "
                                  "image is gray: set Colour to rgb, or give it one grid")
        return image, kernels, body.layer.config()

    def close(self) -> None:
        self.images.close()
        self.models.close()
