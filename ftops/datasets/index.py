"""A compact set of example digests, for duplicates within a file and overlap between files."""

from __future__ import annotations

from array import array


class DigestIndex:
    """Digest -> first line, as open addressing over two flat arrays kept at most half full:
    16 bytes a slot where a dict takes about 100 bytes an entry (ints and table included)."""

    def __init__(self) -> None:
        self._size = 0
        self._keys = array("Q", bytes(8 * 1024))
        self._lines = array("Q", bytes(8 * 1024))

    def add(self, digest: int, line: int) -> int | None:
        """Records ``digest`` at ``line`` unless seen before; returns the earlier line if it was."""
        keys = self._keys
        mask = len(keys) - 1
        slot = digest & mask
        while keys[slot]:
            if keys[slot] == digest:
                return self._lines[slot]
            slot = (slot + 1) & mask
        keys[slot] = digest
        self._lines[slot] = line
        self._size += 1
        if 2 * self._size > len(keys):
            self._grow()
        return None

    def get(self, digest: int) -> int | None:
        keys = self._keys
        mask = len(keys) - 1
        slot = digest & mask
        while keys[slot]:
            if keys[slot] == digest:
                return self._lines[slot]
            slot = (slot + 1) & mask
        return None

    def state(self) -> tuple[int, array[int], array[int]]:
        """What ``restore`` takes: the count and the two tables."""
        return self._size, self._keys, self._lines

    @classmethod
    def restore(cls, size: int, keys: array[int], lines: array[int]) -> DigestIndex:
        """The index ``state`` described (tables of one power-of-two size, at most half full)."""
        slots = len(keys)
        if slots != len(lines) or slots < 2 or slots & (slots - 1) or not 0 <= 2 * size <= slots:
            raise ValueError("not the state of a DigestIndex")
        index = cls()
        index._size, index._keys, index._lines = size, keys, lines
        return index

    def _grow(self) -> None:
        old = zip(self._keys, self._lines, strict=True)
        self._keys = array("Q", bytes(16 * len(self._keys)))
        self._lines = array("Q", bytes(8 * len(self._keys)))
        self._size = 0
        for digest, line in old:
            if digest:
                self.add(digest, line)
