"""Command results: what one command computed, as one object with ``to_dict()`` (the JSON a
command writes and the page reads) and ``write(folder)`` (its files, through
:mod:`convlens.outputs`). Surfaces (the CLI, the page, notebooks) only render these objects.

One module per command, imported by name (``from convlens.results.inspection import
inspect_image``), so loading this package costs nothing.
"""
