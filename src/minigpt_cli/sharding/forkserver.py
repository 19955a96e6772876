"""The server the worker processes are forked from (``forkserver``; ``spawn`` where there is none).

The server imports ``workers`` once, and with the GPT-2 tokenizer also builds its BPE tables
(``gpt2_tables``), before it forks: no worker spends ~0.3 s importing or ~0.2 s on the tables.
``start_early`` launches it as soon as the settings are known -- the shard command calls it
before importing the pipeline -- so that its start-up runs on the other core while the main
process gets ready. This module imports nothing heavy, for that reason.
"""

from __future__ import annotations

import multiprocessing

WORKERS = "minigpt_cli.sharding.workers"
GPT2_TABLES = "minigpt_cli.sharding.gpt2_tables"


def context(gpt2: bool):
    """The multiprocessing context for worker pools; ``gpt2``: preload the BPE tables."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([WORKERS] + ([GPT2_TABLES] if gpt2 else []))
        return ctx
    return multiprocessing.get_context("spawn")


def start_early(workers: int, gpt2: bool) -> None:
    """Launch the server now if ``workers`` (>= 2) means a process pool (see workers.py). A
    no-op otherwise and when it already runs (its preload list only matters to its first
    start)."""
    if workers >= 2 and context(gpt2).get_start_method() == "forkserver":
        # lazy: only a process pool needs it
        from multiprocessing import forkserver

        try:
            forkserver.ensure_running()
        except Exception:  # noqa: BLE001, S110 -- only a head start: the pool starts it itself
            pass          # and reports a real failure then
