"""How a step's tokens are split: micro-batch x sequence length x processes x accumulation.

``tokens_per_step = micro_batch * seq_len * world * accum`` must hold exactly; when it does
not, the error proposes the nearest valid token counts and micro-batches.
"""

from __future__ import annotations

from minigpt_cli.errors import MinigptError


def accumulation(tokens_per_step: int, micro_batch: int, seq_len: int, world: int) -> int:
    per_micro = micro_batch * seq_len * world
    if tokens_per_step % per_micro == 0:
        return tokens_per_step // per_micro
    lower = (tokens_per_step // per_micro) * per_micro
    upper = lower + per_micro
    options = [f"--tokens-per-step {v} ({v // per_micro} accumulation steps)"
               for v in (lower, upper) if v > 0]
    unit = seq_len * world
    if tokens_per_step % unit == 0:
        seqs = tokens_per_step // unit
        fits = [b for b in _divisors(seqs) if b <= max(micro_batch * 4, 1)]
        near = sorted(fits, key=lambda b: abs(b - micro_batch))[:3]
        options += [f"--micro-batch {b} ({seqs // b} accumulation steps)" for b in sorted(near)]
    proc = f" x {world} processes" if world > 1 else ""
    raise MinigptError(
        f"--tokens-per-step {tokens_per_step} is not a multiple of --micro-batch {micro_batch} x "
        f"--seq-len {seq_len}{proc} = {per_micro} tokens, so gradient accumulation cannot reach "
        f"it exactly. Nearest valid: {'; or '.join(options)}."
    )


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, int(n**0.5) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))


def micro_batch_candidates(tokens_per_step: int | None, seq_len: int, world: int,
                           cap: int = 512) -> list[int]:
    """Micro-batches that keep ``tokens_per_step`` exact, largest first."""
    if tokens_per_step is None:
        return [b for b in (512, 256, 128, 64, 32, 16, 8, 4, 2, 1) if b <= cap]
    unit = seq_len * world
    if tokens_per_step % unit:
        raise MinigptError(
            f"--tokens-per-step {tokens_per_step} is not a multiple of --seq-len {seq_len}"
            + (f" x {world} processes" if world > 1 else "")
            + f" = {unit}; with --micro-batch auto it must be. Nearest valid: "
            f"{(tokens_per_step // unit) * unit or unit} or {(tokens_per_step // unit + 1) * unit}."
        )
    return [b for b in reversed(_divisors(tokens_per_step // unit)) if b <= cap]
