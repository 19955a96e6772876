"""CLI commands: thin functions that parse, resolve settings, call one core function, render.

Nothing here imports torch at module level, so `minigpt --help` stays fast.
"""
