"""Defaults every surface shares (the CLI's help texts show them), in a module without torch,
so that ``convlens --help`` loads none of the library: one definition each.

Limits (the most a request may ask for) are :mod:`convlens.limits`; these are the values used
when nothing is asked: stored and working sizes, animation sizes, and the resolutions at which
figures are drawn.
"""

STORED_MAX_SIDE = 256
"""Longest side, in pixels, at which feature maps are kept (area-averaged) unless full size is
asked for: enough for figures, and it bounds memory on large images."""

DEFAULT_FRAMES = 100
"""Most frames an animation has unless asked otherwise."""

DEFAULT_CROP = 6
"""Side, in pixels, of the image crop an animation slides the kernel over unless asked
otherwise."""

DEFAULT_MAX_SIDE = 1024
"""Longest side, in pixels, the explorer shrinks an image to unless another working size is
picked (the page stays interactive on a 24 MP photo). The command the page offers for a
hovered pixel passes it as ``--max-side`` whenever it shrank the image, so the CLI prints the
same numbers."""

WORKING_SIDES = (128, 192, 256, 384, 512, 768, 1024, 2048, 4096)
"""Longest sides, in pixels, an image may be shrunk to before computing, as the page's and the
notebook explorer's menus offer them (``None``/full size besides, in the notebook)."""

FIGURE_DPI = 110
"""Resolution of the figure files commands write (``run``, ``train``, ``explain``; dots per
inch)."""

REPORT_DPI = 90
"""Resolution of the figures embedded in ``report.html``: sharp, and the page stays a few MB."""

SCREEN_DPI = 80
"""Resolution of figures shown on screen: notebooks and widgets, animations: readable, and a
few hundred kB per figure."""
