"""A compact set of 64-bit keys in one numpy array, for the dedup stages.

Dedup remembers keys for the whole run (one per document for exact dedup, one per LSH band for
MinHash), so its memory grows with the corpus. A Python ``set`` of ints costs about 60-90 bytes
a key (a 32-byte int object plus its table slot); this open-addressing table with linear probing
costs 8 bytes a slot at a load factor kept between 1/4 and 1/2: 16-32 bytes a key, and while it
doubles, the old and the new table live together for a moment (3x).

Key 0 marks an empty slot, so a key 0 is stored as 1: the two are one key here (a 2**-63
event for the well-mixed hashes stored in it).
"""

from __future__ import annotations

import numpy as np

_FIB = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio: Fibonacci hashing (Knuth 6.4)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)
_FIB_INT, _U64 = int(_FIB), (1 << 64) - 1
_SMALL = 64  # batches up to this size take the pure-Python path


class U64Set:
    """Insert-and-test for batches of uint64 keys."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        bits = max(4, int(capacity - 1).bit_length())
        self._bits = bits
        self._table = np.zeros(1 << bits, dtype=np.uint64)  # (2**bits,) 0 = empty
        self._cells = memoryview(self._table)  # item access without numpy scalar overhead
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        return self._table.nbytes

    def state_dict(self) -> dict[str, np.ndarray | int]:
        return {"table": self._table, "size": self._size}

    def load_state_dict(self, d: dict) -> None:
        """The table as saved (its length a power of two >= 16, its size the keys in it)."""
        table = np.asarray(d["table"])
        n = len(table)
        if table.dtype != np.uint64 or table.ndim != 1 or n < 16 or n & (n - 1):
            raise ValueError(f"not a key table: {table.dtype} {table.shape}")
        size = int(d["size"])
        if size != int(np.count_nonzero(table)) or 2 * size > n:
            raise ValueError(f"the key table holds {np.count_nonzero(table)} keys, not {size}")
        self._table, self._bits, self._size = table.copy(), n.bit_length() - 1, size
        self._cells = memoryview(self._table)

    def add(self, keys: np.ndarray) -> np.ndarray:
        """Insert ``keys`` (K,); return (K,) bool: True where the key was already in the set.

        A key repeated inside one call is new the first time and present after that.
        """
        keys = np.asarray(keys, dtype=np.uint64)
        if 2 * (self._size + len(keys)) > len(self._table):
            self._grow(self._size + len(keys))
        if len(keys) <= _SMALL:
            return np.array(self._insert_few(keys.tolist()), dtype=bool)
        keys = np.where(keys == _ZERO, _ONE, keys)
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        found_uniq = np.zeros(len(uniq), dtype=bool)
        self._size += self._insert(self._table, self._bits, uniq, found_uniq)
        found = found_uniq[inverse]
        repeat = np.ones(len(keys), dtype=bool)
        repeat[first] = False
        return found | repeat  # a later copy within the call finds the first one

    def _insert_few(self, keys: list[int]) -> list[bool]:
        """One key at a time in Python: for a document's handful of keys, far cheaper than
        a dozen numpy calls per probing round."""
        cells, shift, mask = self._cells, 64 - self._bits, (1 << self._bits) - 1
        found = []
        for key in keys:
            key = key or 1
            slot = ((key * _FIB_INT) & _U64) >> shift
            while True:
                cur = cells[slot]
                if cur == key:
                    found.append(True)
                    break
                if cur == 0:
                    cells[slot] = key
                    self._size += 1
                    found.append(False)
                    break
                slot = (slot + 1) & mask
        return found

    def _grow(self, need: int) -> None:
        bits = self._bits
        while (1 << bits) < 4 * need:  # back to a load of 1/4 at most
            bits += 1
        old = self._table[self._table != _ZERO]
        table = np.zeros(1 << bits, dtype=np.uint64)
        self._insert(table, bits, old, np.zeros(len(old), dtype=bool))
        self._table, self._bits, self._cells = table, bits, memoryview(table)

    @staticmethod
    def _insert(table: np.ndarray, bits: int, keys: np.ndarray, found: np.ndarray) -> int:
        """Linear probing for all keys at once; returns how many keys were newly stored."""
        mask = np.uint64((1 << bits) - 1)
        slots = (keys * _FIB) >> np.uint64(64 - bits)  # (K,) top bits of the product
        pending = np.arange(len(keys))
        added = 0
        while pending.size:
            k, s = keys[pending], slots[pending]
            cur = table[s]
            hit = cur == k
            found[pending[hit]] = True
            empty = cur == _ZERO
            if empty.any():
                # Several keys may race for one empty slot: the last write wins, the others
                # see a stranger there and probe on.
                table[s[empty]] = k[empty]
                won = np.zeros_like(empty)
                won[empty] = table[s[empty]] == k[empty]
                added += int(won.sum())  # keys are distinct here: one winner a slot
                hit |= won
                lost = empty & ~won
            else:
                lost = empty
            move = ~hit & ~lost  # occupied by another key: next slot
            slots[pending[move]] = (s[move] + _ONE) & mask
            pending = pending[~hit]
        return added
