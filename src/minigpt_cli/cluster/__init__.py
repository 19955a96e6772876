"""`minigpt shard ... --parts N --executor local|dask`: the shard pipeline as a job of engine
tasks -- signatures per part, global dedup by hash bucket and LSH band, the parts, the merge
(job.py). Dask distributed is imported only when ``--executor dask`` asks for it."""
