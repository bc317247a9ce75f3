"""Pick the torch device: ``auto`` prefers CUDA, then Apple's MPS, then the CPU.

Deciding whether a GPU is there needs torch, and importing torch and starting CUDA costs
seconds, more than the CPU backends take for a photo. :func:`device_for_work` is the rule the
layer commands use: ``auto`` looks for a GPU only for work of at least :data:`GPU_MIN_MACS`
multiply-adds; below it ``auto`` means the CPU and torch is not imported. An explicit
``cuda``/``mps`` is always honoured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:  # torch loads only where a torch device is asked for
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

GPU_MIN_MACS = 20_000_000_000
"""Multiply-adds (``N K C kh kw H' W'``) from which ``auto`` looks for a GPU for one layer run;
below it ``auto`` is the CPU and torch is not imported. On the 2-core machine importing torch
alone takes 2.0-2.2 s (measured), and starting CUDA adds typically 1-3 s more (not measured
here: no GPU; ``bench/gpu_check.sh`` times it where there is one). The CPU backends do the work
at about 1.5 G (NumPy) to 4 G (fused, once loaded) multiply-adds a second here (a 12 MP photo
with the tutorial's three kernels, 0.29 G, in 0.19 s and 0.07 s warm), so 20 G is 5-13 s of CPU
work, more than a GPU costs to start: 16 5x5 kernels on a 48 MP RGB photo is about 58 G."""


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N|mps`` into a ``torch.device`` that exists on this machine.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    import torch

    if isinstance(name, torch.device):
        return name
    text = str(name).strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = check_device_name(text)
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for, but this torch build sees no CUDA GPU")
    if kind == "mps" and not _mps_available():
        raise ConfigError("device 'mps' asked for, but Apple's MPS is not available here")
    try:
        return torch.device(text)
    except RuntimeError as exc:
        raise ConfigError(f"device {name!r} is not valid: {exc}") from None


def check_device_name(name: str) -> str:
    """The kind of a device name (``cpu``, ``cuda``, ``mps``; ``auto`` for auto), or a
    one-line error naming the choices; no torch is imported.

    >>> check_device_name("cuda:1")
    'cuda'
    """
    kind = str(name).strip().lower().split(":", 1)[0]
    if kind not in DEVICE_CHOICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICE_CHOICES)}; got {name!r}")
    return kind


def device_for_work(name: Any = "auto", work: int = 0) -> str:
    """The device a layer run of ``work`` multiply-adds uses, as text (``cpu``, ``cuda``,
    ``cuda:1``, ``mps``). ``auto`` is the CPU below :data:`GPU_MIN_MACS`, without importing
    torch, and :func:`resolve_device`'s choice from there on; ``cpu`` never imports torch;
    anything else is :func:`resolve_device`'s (checked to exist here).

    >>> device_for_work("auto", 10**6), device_for_work("CPU")
    ('cpu', 'cpu')
    """
    if not isinstance(name, str):  # a torch.device
        return str(resolve_device(name))
    text = name.strip().lower()
    kind = check_device_name(text)
    if text == "cpu" or (kind == "auto" and work < GPU_MIN_MACS):
        return "cpu"
    return str(resolve_device(text))


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
