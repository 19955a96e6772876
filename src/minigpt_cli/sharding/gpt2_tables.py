"""Imported by the worker processes' forkserver (see workers.py) when the run tokenizes with
GPT-2: the BPE tables are built once, in the server, and every worker forked from it has them.
A failure here (the BPE files missing or altered) is left for the workers to report: each
raises the tokenizer's own clear error on its first batch."""

from minigpt_cli.tokenizer import _gpt2_encoding

try:
    _gpt2_encoding()
except Exception:  # noqa: BLE001, S110 -- reported by the workers, see above
    pass
