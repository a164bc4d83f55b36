"""A map of int to int for millions of keys at 16 bytes each: the journal index's storage.

A dict costs about 100 bytes an entry (its table, and an object for each key and value). Here the
bulk lives in two sorted arrays of 64-bit ints, looked up by bisection, and new entries in a small
dict until it is merged into the arrays (when it grows past an eighth of them), so that an update
does not move the arrays each time.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable


class ScopeNumbers:
    __slots__ = ("_keys", "_recent", "_values")

    def __init__(self) -> None:
        self._keys = array("q")
        self._values = array("q")
        self._recent: dict[int, int] = {}

    def get(self, key: int) -> int | None:
        found = self._recent.get(key)
        if found is not None:
            return found
        keys = self._keys
        at = bisect_left(keys, key)
        return self._values[at] if at < len(keys) and keys[at] == key else None

    def set(self, key: int, value: int) -> None:
        """Set ``key``; the caller has compared with what ``get`` gave."""
        self._recent[key] = value
        if len(self._recent) > max(4096, len(self._keys) >> 3):
            self._merge()

    def load(self, items: Iterable[tuple[int, int]]) -> None:
        """Add many (key, value) pairs at once (a first read), the larger value of a key given twice."""
        recent, merged = self._recent, len(self._keys) > 0
        for key, value in items:
            current = self.get(key) if merged else recent.get(key)
            if current is None or current < value:
                recent[key] = value
        self._merge()

    def keep(self, wanted: Callable[[int], bool]) -> None:
        """Drop every entry whose value is not ``wanted``."""
        self._merge()
        keys, values = array("q"), array("q")
        for key, value in zip(self._keys, self._values, strict=True):
            if wanted(value):
                keys.append(key)
                values.append(value)
        self._keys, self._values = keys, values

    def clear(self) -> None:
        self.__init__()

    def nbytes(self) -> int:
        """Memory held, for the benchmark: the arrays' items and the pending dict's entries."""
        merged = (len(self._keys) + len(self._values)) * self._keys.itemsize
        return merged + len(self._recent) * 100

    def __len__(self) -> int:
        self._merge()
        return len(self._keys)

    def _merge(self) -> None:
        if not self._recent:
            return
        recent = sorted(self._recent.items())
        self._recent = {}
        old_keys, old_values = self._keys, self._values
        keys, values = array("q"), array("q")
        i, n = 0, len(old_keys)
        for key, value in recent:
            while i < n and old_keys[i] < key:
                keys.append(old_keys[i])
                values.append(old_values[i])
                i += 1
            if i < n and old_keys[i] == key:
                i += 1  # what was set since supersedes it
            keys.append(key)
            values.append(value)
        keys.extend(old_keys[i:])
        values.extend(old_values[i:])
        self._keys, self._values = keys, values
