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

DEFAULT_MAX_SIDE: int | None = None
"""Longest side, in pixels, the CLI and the page shrink an image to unless another is asked
for; ``None``: full size. ``convlens run`` and ``convlens explain`` compute at the photo's own size,
and so does the page, so a hovered pixel's numbers are ``convlens explain IMAGE --at y,x``'s.
Only a photo over the page's working budget (:data:`convlens.serve.limits.PAGE_BUDGET_BYTES`)
is shrunk there, to the largest of :data:`WORKING_SIDES` that fits; the page says so and the
command it offers for a hovered pixel then carries ``--max-side``."""

WORKING_SIDES = (128, 192, 256, 384, 512, 768, 1024, 2048, 4096)
"""Longest sides, in pixels, an image may be shrunk to before computing, as the page's and the
notebook explorer's menus offer them (full size, ``None``, besides)."""

FIGURE_DPI = 110
"""Resolution of the figure files commands write (``run``, ``train``, ``explain``; dots per
inch)."""

REPORT_DPI = 90
"""Resolution of the figures embedded in ``report.html``: sharp, and the page stays a few MB."""

SCREEN_DPI = 80
"""Resolution of figures shown on screen: notebooks and widgets, animations: readable, and a
few hundred kB per figure."""
