"""Defaults that the commands' help texts show, in a module without torch, so that
``convlens --help`` loads none of the library."""

STORED_MAX_SIDE = 256
"""Longest side, in pixels, at which feature maps are kept (area-averaged) unless full size is
asked for: enough for figures, and it bounds memory on large images."""

DEFAULT_FRAMES = 100
"""Most frames an animation has unless asked otherwise."""

DEFAULT_CROP = 6
"""Side, in pixels, of the image crop an animation slides the kernel over unless asked
otherwise."""
