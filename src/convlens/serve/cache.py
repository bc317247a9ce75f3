"""A small thread-safe least-recently-used cache, bounded in entries and optionally in bytes:
the server's images, stage payloads and model-panel runs each keep one."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class LRU:
    """A small thread-safe least-recently-used cache of at most ``size`` values and, with
    ``weigh`` (a value's size in bytes), at most ``max_bytes`` bytes; ``on_evict`` sees each
    value dropped."""

    def __init__(self, size: int, on_evict: Callable[[Any], None] | None = None,
                 max_bytes: int | None = None, weigh: Callable[[Any], int] | None = None
                 ) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict = OrderedDict()
        self._weights: dict = {}
        self._lock = threading.Lock()
        self._on_evict = on_evict
        self._weigh = weigh

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        with self._lock:
            self.bytes -= self._weights.pop(key, 0)
            self._items[key] = value
            self._items.move_to_end(key)
            if self._weigh is not None:
                self._weights[key] = self._weigh(value)
                self.bytes += self._weights[key]
            while len(self._items) > self.size or (
                    self.max_bytes is not None and self.bytes > self.max_bytes
                    and len(self._items) > 1):
                old_key, old = self._items.popitem(last=False)
                self.bytes -= self._weights.pop(old_key, 0)
                if self._on_evict is not None:
                    self._on_evict(old)

    def __len__(self) -> int:
        return len(self._items)
