"""Global exact and near-duplicate removal over every part of a job, as FineWeb does it.

Input: per document that reaches the dedup stages, its global id (``input << 32 | record``:
sorting ids is input order), its exact key (64-bit BLAKE2b of the normalized text) and its
MinHash band keys (dedup.py's normalization, minhash.py's signatures). Steps, each a function
an engine task runs on a bounded share of the data:

1. ``exact_bucket``: the (key, id) pairs whose key falls in one hash bucket; sorted, every id
   after the first of a key is a duplicate.                      memory: 16 B x docs / buckets
2. ``band_bucket``: for one LSH band and one bucket, the (band key, id) pairs of the documents
   exact dedup kept; sorted, each id sharing a key is paired with the first id of that key
   (a star: the same connected components as all pairs).        memory: 16 B x docs / buckets
3. ``components``: union-find over all pairs (label propagation to the smallest id, then
   pointer jumping); every document but the first of its component (in input order) is a near
   duplicate.                          memory: 16 B a pair + 16 B a document that is in a pair

Per billion documents with FineWeb's 14 bands: the signatures on disk are 128 GB (id, exact
key, 14 band keys: 8 B each); with 64 buckets a bucket task holds ~0.25 GB (x2 while sorting);
the union-find holds the pairs (a few % of documents on web text: ~1-3 GB) and one label per
paired document.

``deduplicate`` runs the same steps in one process: the reference the staged run must equal.
A cluster keeps its first document; the chain's sequential minhash_dedup stage differs only
where near-copies chain (A~C and B~C but not A~B: the stage keeps A and B, the clusters keep A).
"""

from __future__ import annotations

import numpy as np


def bucket_of(keys: np.ndarray, buckets: int) -> np.ndarray:
    """(n,) bucket of each uint64 key (its top bits mixed down: keys are already hashes)."""
    return (keys % np.uint64(buckets)).astype(np.int64)


def exact_bucket(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Ids (sorted) whose exact key an earlier id (in input order) already has."""
    order = np.lexsort((ids, keys))  # by key, then input order
    k, i = keys[order], ids[order]
    later = np.zeros(len(k), dtype=bool)
    later[1:] = k[1:] == k[:-1]
    return np.sort(i[later])


def band_bucket(keys: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(m, 2) uint64 pairs (first id of a shared band key, another id with it)."""
    order = np.lexsort((ids, keys))
    k, i = keys[order], ids[order]
    if len(k) == 0:
        return np.zeros((0, 2), dtype=np.uint64)
    starts = np.ones(len(k), dtype=bool)
    starts[1:] = k[1:] != k[:-1]
    first = i[np.maximum.accumulate(np.where(starts, np.arange(len(k)), 0))]  # (n,)
    pairs = np.stack([first[~starts], i[~starts]], axis=1)  # (m, 2)
    return pairs.astype(np.uint64)


def components(pairs: np.ndarray) -> np.ndarray:
    """Ids (sorted) that are not the first (smallest id) of their connected component."""
    if len(pairs) == 0:
        return np.zeros(0, dtype=np.uint64)
    nodes, dense = np.unique(pairs, return_inverse=True)  # nodes sorted = input order
    a, b = dense.reshape(-1, 2).T  # (m,), (m,)
    label = np.arange(len(nodes))
    while True:  # every node takes the smallest label among its neighbours, until stable
        low = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, low)
        np.minimum.at(new, b, low)
        new = new[new]  # pointer jumping: follow labels to their own label
        if np.array_equal(new, label):
            break
        label = new
    return nodes[label != np.arange(len(nodes))]


def near_duplicates(band_pairs: list[np.ndarray]) -> np.ndarray:
    return components(np.concatenate(band_pairs) if band_pairs else np.zeros((0, 2), np.uint64))


def deduplicate(ids: np.ndarray, exact: np.ndarray | None, bands: np.ndarray | None
                ) -> tuple[np.ndarray, np.ndarray]:
    """The reference, in one process: (exact duplicate ids, near duplicate ids), both sorted.
    ``exact``: (n,) keys or None (no exact dedup); ``bands``: (n, bands) keys or None."""
    gone = exact_bucket(exact, ids) if exact is not None else np.zeros(0, np.uint64)
    if bands is None:
        return gone, np.zeros(0, np.uint64)
    keep = ~np.isin(ids, gone)
    pairs = [band_bucket(bands[keep, b], ids[keep]) for b in range(bands.shape[1])]
    return gone, near_duplicates(pairs)
