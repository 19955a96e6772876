"""`make-math` estimates its memory and disk before it starts and refuses what does not fit
(naming --n / --ops, the estimate and the limit), leaves nothing behind, and still writes
exactly the files it wrote before the estimate and the chunked gathering were added."""

from __future__ import annotations

import hashlib
import re

import pytest
from faults_support import check_limits_allowed, minigpt, one_paragraph_error
from typer.testing import CliRunner

from minigpt_cli.cli import app
from minigpt_cli.mathgen.budget import estimate
from minigpt_cli.mathgen.dataset import make_math
from minigpt_cli.mathgen.settings import MakeMathSettings

# sha256 of train.jsonl and test.jsonl as main (9c3427c, before this change) wrote them
GOLDEN = [
    (dict(n=3000, n_test=100, digits="1-3"),  # the default before the calculator mix
     "b443d6ed94e7ce6a034183a0e19df2baa426bc5c48213455044e233dea1c1363",
     "d10156ee441768166aac68a8caa51d56c2eed74f5e3df67a7ef13d1c4ad25a3f"),
    (dict(n=30_000, n_test=200, ops="-:9", workers=2),  # rejection draws, carry counts, pool
     "bfd73381d96447aee2fe3726cd809cc0cc2fedb11ddb8b6dc9d48f106756d720",
     "25fcfbf7d3115636dc6317e53b2d828cbae0cc11b743f7c6dc1fd1a8031d87a0"),
    (dict(n=20_000, n_test=300, ops="-:4x2,*:2x2,/:4x1", balance="lengths", format="reverse",
          tokenizer="gpt2"),
     "3bbcd267798eafda1c6ca5fcc3f438bd3e1f8322e7e2342397bd17314e487bb7",
     "845cc1617ad5fad48b4168bde5f7f57bd77918ce7e9e0e078f7a1f9c0600cff4"),
    (dict(n=12_000, n_test=300, ops="*:9x3,/:9x2", seed=3),
     "d25d193607a719f2ea0d069704d4a660e810d60dc0011526b1956167d22c0229",
     "71345a34c59e02d92c97661c864d8af2cd0b6c0824d343d40d7be8172c596269"),
]


@pytest.mark.parametrize("case", range(len(GOLDEN)))
def test_output_is_byte_identical_to_before(case, tmp_path):
    kwargs, train, test = GOLDEN[case]
    s = MakeMathSettings(out=tmp_path, **kwargs)
    meta = make_math(s)
    digest = {f: hashlib.sha256((tmp_path / f).read_bytes()).hexdigest()
              for f in ("train.jsonl", "test.jsonl")}
    assert digest == {"train.jsonl": train, "test.jsonl": test}
    f = estimate(s.op_specs(), s.n, s.n_test, s.balance, s.format, s.spaced, 1)
    size = sum((tmp_path / n).stat().st_size for n in ("train.jsonl", "test.jsonl"))
    assert f.lines == sum(meta["counts"].values())
    assert size <= f.disk < 2 * size  # the disk estimate bounds the files, and not loosely


def test_a_trillion_problems_are_refused_before_anything_is_drawn(tmp_path):
    out = tmp_path / "new" / "math"
    r = CliRunner().invoke(app, ["make-math", "--n", "1000000000000", "--ops", "+:9", "--out",
                                 str(out)])
    assert r.exit_code == 2 and not isinstance(r.exception, MemoryError), r.output
    msg = " ".join(r.output.split())
    assert "make-math with --n 1,000,000,000,000 and --ops '+:9' would need about" in msg
    assert re.search(r"about [\d.]+ TiB of memory to draw the 1,000,000,002,000 problems", msg)
    assert re.search(r"up to [\d.]+ TiB of disk for train.jsonl and test.jsonl", msg)
    assert "Nothing was written. Lower --n (about" in msg and "--balance lengths" in msg
    assert not (tmp_path / "new").exists()


def test_two_hundred_million_are_refused_under_a_memory_limit(tmp_path):
    """With 4 GiB of address space (ulimit -v) the 200M-problem plan cannot fit: refused with
    the estimate and the limit, instead of swapping for an hour and writing nothing."""
    check_limits_allowed()
    r = minigpt("make-math", "--n", "200000000", "--ops", "+:9", "--out", tmp_path / "m",
                address_space=4 << 30)
    msg = one_paragraph_error(r)
    assert "--n 200,000,000 and --ops '+:9' would need about" in msg, msg
    assert re.search(r"[\d.]+ GiB of memory .* but this process's address-space limit "
                     r"\(ulimit -v\) is [\d.]+ GiB", msg), msg
    assert not (tmp_path / "m").exists()


def test_files_over_the_file_size_limit_are_refused_up_front(tmp_path):
    check_limits_allowed()
    r = minigpt("make-math", "--n", "100000", "--out", tmp_path / "m", fsize=1 << 20)
    msg = one_paragraph_error(r)
    assert "a train.jsonl of up to" in msg and "the file-size limit (ulimit -f) is 1.0 MiB" \
        in msg, msg
    assert not (tmp_path / "m").exists()
