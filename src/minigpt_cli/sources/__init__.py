"""Built-in source plugins (entry-point group minigpt.sources)."""
