"""The convlens version, in a module of its own: any module records it (in ``model.json``,
``inspect.json``, ...) without importing the package root, which loads the notebook display."""

__version__ = "0.1.0"

__all__ = ["__version__"]
