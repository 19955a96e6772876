"""The training loop in-process, on tiny models: overfitting, gradient accumulation (with and
without a loss mask), the LR schedules, the loader's order, the instability guard."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from test_train_support import char_corpus

from minigpt_cli.model import GPT, preset_config
from minigpt_cli.tokenizer import CharTokenizer
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train.faults import parse_faults
from minigpt_cli.train.loader import ValWindows, WindowStream, step_windows
from minigpt_cli.train.loop import Trainer
from minigpt_cli.train.metrics import read_metrics
from minigpt_cli.train.schedule import Schedule, build_schedule
from minigpt_cli.train.settings import TrainSettings
from minigpt_cli.train.spec import RunSpec
from minigpt_cli.train.step_folder import list_checkpoints

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def corpus():
    text = char_corpus(30)
    tok = CharTokenizer.from_text(text)
    return tok, np.array(tok.encode(text), dtype=np.uint16)


def make_trainer(tmp_path, tok, ids, micro=4, accum=1, seq=32, mask=None, events=None,
                 val=True, **overrides):
    base = dict(max_steps=8, lr=3e-3, warmup_steps=0, eval_every=0, sample_every=0,
                checkpoint_every=0, device="cpu", dtype="float32", peak_flops=1e11, seed=3)
    s = TrainSettings(**{**base, **overrides})
    torch.manual_seed(s.seed)
    model = GPT(preset_config("nano", vocab_size=tok.vocab_size, dropout=s.dropout))
    train = WindowStream([ids], [mask] if mask is not None else None, seq, seed=s.seed)
    val_w = ValWindows([ids[:400]], None, seq) if val else None
    spec = RunSpec(tmp_path, tok, micro, seq, accum, D.Dist(), torch.float32,
                   faults=parse_faults(s.inject_faults))
    listener = events.append if events is not None else E.ignore
    return Trainer(model, train, val_w, s, spec, listener)


def test_overfits_one_tiny_batch(tmp_path, corpus):
    tok, ids = corpus
    one = ids[:33]  # exactly one window of 32 + 1 tokens: every step sees the same batch
    tr = make_trainer(tmp_path, tok, one, micro=1, max_steps=120, lr=1e-2, val=False,
                      schedule="constant")
    tr.run()
    losses = [m["loss"] for m in read_metrics(tmp_path) if "loss" in m]
    assert losses[0] > 3.0  # ~ln(vocab) at the start
    assert losses[-1] < 0.1, losses[-10:]


def _weights(tr):
    return {k: v.clone() for k, v in tr.raw.state_dict().items()}


def test_gradient_accumulation_equals_the_big_batch(tmp_path, corpus):
    tok, ids = corpus
    big = make_trainer(tmp_path / "big", tok, ids, micro=4, accum=1, val=False)
    big.run()
    acc = make_trainer(tmp_path / "acc", tok, ids, micro=1, accum=4, val=False)
    acc.run()
    lb = [m["loss"] for m in read_metrics(tmp_path / "big") if "loss" in m]
    la = [m["loss"] for m in read_metrics(tmp_path / "acc") if "loss" in m]
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    wa, wb = _weights(acc), _weights(big)
    for k in wb:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=2e-5)  # Adam steps are ~3e-3


def test_masked_accumulation_weights_micro_batches_by_counted_tokens(tmp_path, corpus):
    """Micro-batches with different numbers of counted targets: the accumulated gradient must
    equal the big batch's (mean over all counted targets), not the mean of the means."""
    tok, ids = corpus
    rng = np.random.default_rng(1)
    mask = (rng.random(len(ids)) < rng.random(len(ids))).astype(np.uint16)  # uneven density
    big = make_trainer(tmp_path / "big", tok, ids, micro=4, accum=1, mask=mask, val=False)
    big.run()
    acc = make_trainer(tmp_path / "acc", tok, ids, micro=1, accum=4, mask=mask, val=False)
    acc.run()
    lb = [m["loss"] for m in read_metrics(tmp_path / "big") if "loss" in m]
    la = [m["loss"] for m in read_metrics(tmp_path / "acc") if "loss" in m]
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for k, v in _weights(big).items():
        torch.testing.assert_close(_weights(acc)[k], v, rtol=1e-4, atol=2e-5)


def test_lr_schedules():
    cos = Schedule("cosine", 6e-4, 6e-5, warmup_steps=10, max_steps=110, decay_steps=110)
    assert cos.lr(0) == pytest.approx(6e-5)  # (0 + 1) / 10 of the peak
    assert cos.lr(9) == pytest.approx(6e-4)
    assert cos.lr(10) == pytest.approx(6e-4)  # cosine starts at the peak
    assert cos.lr(60) == pytest.approx(6e-5 + 0.5 * (6e-4 - 6e-5))  # halfway
    assert cos.lr(110) == pytest.approx(6e-5) and cos.lr(500) == pytest.approx(6e-5)
    const = Schedule("constant", 1e-3, 1e-4, 5, 100, 100)
    assert const.lr(2) == pytest.approx(6e-4) and const.lr(50) == const.lr(99) == 1e-3
    wsd = Schedule("wsd", 1e-3, 1e-4, 0, 100, 20)
    assert wsd.lr(79) == 1e-3
    assert wsd.lr(89) == pytest.approx(1e-3 + 0.5 * (1e-4 - 1e-3))
    assert wsd.lr(99) == pytest.approx(1e-4)
    # the GPT-3 small recipe of examples/gpt2-124m.toml
    s = TrainSettings(max_steps=19073, warmup_steps=715, lr=6e-4)
    g = build_schedule(s)
    assert g.lr(714) == pytest.approx(6e-4) and g.lr(19072) == pytest.approx(6e-5, rel=1e-3)
    assert build_schedule(TrainSettings(max_steps=1000)).warmup_steps == 50


def test_loader_epochs_cover_every_window_once_and_ranks_are_disjoint():
    arrays = [np.arange(1 + 8 * k, dtype=np.uint16) for k in (5, 3, 7)]  # 5 + 3 + 7 windows
    s = WindowStream(arrays, None, seq_len=8, seed=11)
    assert s.total == 15
    first = [tuple(r) for r in s.take(15)]
    assert sorted(first) == sorted((a, w) for a, c in enumerate((5, 3, 7)) for w in range(c))
    second = [tuple(r) for r in s.take(15)]
    assert sorted(second) == sorted(first) and second != first  # reshuffled per epoch
    assert s.position.epoch == 2 and s.position.cursor == 0
    # resuming from a position continues identically
    a = WindowStream(arrays, None, seq_len=8, seed=11)
    a.take(7)
    b = WindowStream(arrays, None, seq_len=8, seed=11)
    b.restore(a.position.epoch, a.position.cursor)
    assert (a.take(20) == b.take(20)).all()
    # one step split over 2 ranks x 2 micro-steps x 3 sequences: disjoint, complete
    refs = WindowStream(arrays, None, seq_len=8, seed=1).take(12)
    parts = [m for r in range(2) for m in step_windows(refs, r, 2, 2, 3)]
    assert sorted(map(tuple, np.concatenate(parts))) == sorted(map(tuple, refs))
    # a batch's targets are its inputs shifted by one
    batch = s.gather(refs[:3])
    assert batch.x.shape == (3, 8) and torch.equal(batch.x[:, 1:], batch.y[:, :-1])


def test_guard_skips_a_non_finite_step(tmp_path, corpus):
    tok, ids = corpus
    events = []
    tr = make_trainer(tmp_path, tok, ids, events=events, max_steps=6, inject_faults="nan@3",
                      val=False)
    before = {}

    def spy(e):
        events.append(e)
        if isinstance(e, E.StepEvent) and e.step == 2:
            before.update(_weights(tr))
        if isinstance(e, E.StepEvent) and e.step == 3:
            for k, v in _weights(tr).items():  # the update was skipped: nothing moved
                assert torch.equal(v, before[k]), k

    tr.emit = spy
    tr.run()
    guard = [e for e in events if isinstance(e, E.GuardEvent)]
    assert [(g.step, g.action) for g in guard] == [(3, "skip")]
    assert "non-finite loss" in guard[0].message
    metrics = read_metrics(tmp_path)
    assert [m.get("skipped", False) for m in metrics if "loss" in m] == \
        [False, False, True, False, False, False]
    assert math.isfinite(metrics[-1]["loss"]) if "loss" in metrics[-1] else True


def test_guard_rolls_back_a_sustained_spike(tmp_path, corpus):
    tok, ids = corpus
    events = []
    tr = make_trainer(tmp_path, tok, ids, events=events, max_steps=18, checkpoint_every=5,
                      inject_faults="spike@12-14:50", guard_spike_steps=3, val=False)
    tr.run()
    guard = [(e.step, e.action) for e in events if isinstance(e, E.GuardEvent)]
    assert guard == [(14, "rollback"), (14, "rollback-done")], guard
    done = [e for e in events if isinstance(e, E.GuardEvent)][-1]
    assert "rolled back to step 10" in done.message and "0.5" in done.message
    steps = [e.step for e in events if isinstance(e, E.StepEvent)]
    assert steps == list(range(1, 15)) + list(range(11, 19))  # replayed from the checkpoint
    assert tr.state.lr_scale == 0.5 and tr.state.step == 18
    # the data of steps 11..14 was skipped: the stream moved on (22 steps of windows taken)
    assert tr.train_data.position.cursor + tr.train_data.position.epoch * tr.train_data.total \
        == 22 * 4
    assert [k for k, _ in list_checkpoints(tmp_path)] == [10, 15, 18]
    lines = [m for m in read_metrics(tmp_path) if m.get("event")]
    assert [m["event"] for m in lines] == ["rollback", "rollback-done"]


def test_activation_checkpointing_gives_the_same_training(tmp_path, corpus):
    tok, ids = corpus
    plain = make_trainer(tmp_path / "plain", tok, ids, val=False, max_steps=4)
    plain.run()
    ckpt = make_trainer(tmp_path / "ckpt", tok, ids, val=False, max_steps=4,
                        activation_checkpointing=True)
    assert ckpt.raw.gradient_checkpointing
    ckpt.run()
    la = [m["loss"] for m in read_metrics(tmp_path / "plain") if "loss" in m]
    lb = [m["loss"] for m in read_metrics(tmp_path / "ckpt") if "loss" in m]
    np.testing.assert_allclose(lb, la, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MINIGPT_SLOW_TESTS"),
                    reason="torch.compile takes minutes on a loaded 2-core CPU; set "
                    "MINIGPT_SLOW_TESTS=1 to run it")
def test_compiled_training_with_eval_and_samples_in_the_loop(tmp_path, corpus):
    tok, ids = corpus
    events = []
    tr = make_trainer(tmp_path, tok, ids, events=events, max_steps=4, compile=True,
                      eval_every=2, sample_every=2, checkpoint_every=2)
    tr.run()
    assert [e.step for e in events if isinstance(e, E.EvalEvent)] == [2, 4]
    assert [e.step for e in events if isinstance(e, E.SampleEvent)] == [2, 4]
    assert [k for k, _ in list_checkpoints(tmp_path)] == [2, 4]


def test_compile_compiles_each_block_for_training_only_and_keeps_names_and_numbers():
    from minigpt_cli.model import GPT, GPTConfig
    from minigpt_cli.train.loop import compile_blocks

    graphs = []

    def counting(gm, example_inputs):  # a torch.compile backend that runs the graph as is
        graphs.append(gm)
        return gm.forward

    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=32,
                    positions="rope", qk_norm=True)
    plain, compiled = GPT(cfg), GPT(cfg)
    compiled.load_state_dict(plain.state_dict())
    names = list(compiled.state_dict())
    compile_blocks(compiled, backend=counting)  # the real backend is inductor: minutes here
    assert list(compiled.state_dict()) == names  # no _orig_mod: checkpoints unchanged
    x = torch.randint(0, 50, (2, 16))
    a, b = plain(x, x)[1], compiled(x, x)[1]
    assert graphs, "the training forward pass ran the compiled blocks"
    a.backward()
    b.backward()
    torch.testing.assert_close(a, b)
    for (n, p), q in zip(plain.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-6, rtol=1e-5, msg=n)
    n = len(graphs)
    compiled.eval()
    with torch.no_grad():  # evaluation and sampling: the plain blocks, nothing recompiled
        torch.testing.assert_close(compiled(x, x)[1], plain.eval()(x, x)[1])
    assert len(graphs) == n
