"""Built-in filter stages (entry-point group minigpt.stages)."""
