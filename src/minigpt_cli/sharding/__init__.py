"""`minigpt shard`: documents from a source plugin, through stage plugins, tokenized in worker
processes, into fixed-size llm.c shards with a manifest -- resumable, splittable into parts,
verifiable.

    source -> stages -> tokenizer (+ <|endoftext|> first) -> writer -> shards/ + manifest.json

Modules: ``config`` (settings), ``chain`` (plugins and the per-document stage chain),
``reader`` (inputs, parts and the resume cursor), ``workers`` (the process pool), ``writer``
(shards), ``funnel`` (kept/dropped counts), ``checkpoint`` (the resume state), ``manifest``,
``run`` (the pipeline), ``verify``, ``merge``, ``charvocab``, ``catalog`` (plugin listing),
``events`` (what the CLI renders).
"""
