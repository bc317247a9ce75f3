"""Figures. Every function returns a ``matplotlib.figure.Figure`` and never calls ``plt.show()``.

One module per family: :mod:`.stages` (kernels, stage maps, images); further modules add the
explanation, training and model figures.
"""

from .stages import (
    DISPLAY_MAX_SIDE,
    plot_image,
    plot_kernels,
    plot_maps,
    plot_overview,
)

__all__ = [
    "DISPLAY_MAX_SIDE",
    "plot_image",
    "plot_kernels",
    "plot_maps",
    "plot_overview",
]
