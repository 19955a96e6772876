"""Evaluation: one interface for every task, built-ins registered like third-party plugins.

An eval task (entry-point group ``minigpt.evals``) is a class with ``name``, ``Options`` (a
``PluginOptions`` pydantic model; ``limit`` and ``batch_size`` are common to all) and
``run(model, tokenizer, data, options, on_progress) -> dict`` returning the task's metrics.

task       the interface, the options base and the progress event
loss       mean loss / perplexity / bits per byte; ``evaluate_loss`` is also the trainer's
           in-loop validation
tokens     token streams from shards or text, windows with a stride, byte and char counts
hellaswag  HellaSwag (completion style), reading the official JSONL or downloading it pinned
completion batched scoring of endings after a shared context (KV cache)
arithmetic make-math problems (the `math` task): greedy decoding, exact match, step validity
greedy     batched greedy decoding with the KV cache, prompts grouped by length
results    result documents: model and data identity, files beside the checkpoint, comparisons
runner     what `minigpt eval` calls: load, run, write
settings   EvalSettings (flag > --config TOML > env > default)

Nothing here prints or imports the CLI; progress goes out as events.
"""
