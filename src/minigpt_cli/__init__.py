"""minigpt: GPT-2 from scratch, from raw web text to an evaluated model, in one CLI."""

__version__ = "0.1.0"
