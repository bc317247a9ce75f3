"""``convlens serve``: the interactive explorer in the browser (FastAPI app and static page).

>>> from convlens.serve import create_app
>>> app = create_app()                  # serve with uvicorn: uvicorn.run(app, port=8765)

Modules, one idea each: :mod:`.app` (the factory), :mod:`.limits` (with the page's working
budget), :mod:`.working` (the size a photo is computed at, and why), :mod:`.schemas` (request
bodies), :mod:`.session` (caches, latest edit wins), :mod:`.wire` (binary messages),
:mod:`.stages` and :mod:`.hover` (the conv layer's answers), :mod:`.model_panel`, and the
routes (:mod:`.routes_page`, :mod:`.routes_stages`, :mod:`.routes_model`).
"""

from .app import STATIC_DIR, create_app
from .limits import MAX_KERNEL_SIDE, MAX_KERNELS, MAX_PIXELS, MAX_UPLOAD_BYTES, WORKING_SIDES
from .wire import pack, quantize_map, unpack

__all__ = [
    "MAX_KERNELS",
    "MAX_KERNEL_SIDE",
    "MAX_PIXELS",
    "MAX_UPLOAD_BYTES",
    "STATIC_DIR",
    "WORKING_SIDES",
    "create_app",
    "pack",
    "quantize_map",
    "unpack",
]
