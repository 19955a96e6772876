"""precision.py: `--dtype auto` follows the measured bf16/fp32 matrix-product speed."""

import torch

from minigpt_cli import precision
from minigpt_cli.precision import AUTO_MIN_SPEEDUP, bf16_speedup, choose_dtype


def test_auto_picks_bf16_exactly_where_it_measured_fast_enough():
    s = bf16_speedup("cpu")
    assert s > 0
    assert bf16_speedup(torch.device("cpu")) == s  # measured once per process
    dtype, why = choose_dtype("auto", "cpu")
    assert dtype == (torch.bfloat16 if s >= AUTO_MIN_SPEEDUP else torch.float32)
    assert f"{s:.1f}x" in why or f"{s:.2f}x" in why


def test_named_formats_are_taken_as_asked_and_threads_are_left_alone():
    threads = torch.get_num_threads()
    for name, dtype in [("float32", torch.float32), ("bfloat16", torch.bfloat16),
                        ("float16", torch.float16)]:
        assert choose_dtype(name, "cpu") == (dtype, f"{name} (asked for)")
    precision._speedups.clear()
    bf16_speedup("cpu")  # measures on one thread, then restores the setting
    assert torch.get_num_threads() == threads
