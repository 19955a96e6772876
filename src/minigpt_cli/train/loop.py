"""THE training loop: pretrain and finetune differ only in what they hand it (initial weights,
data, settings). It knows nothing about the command line: it writes the run folder (rank 0)
and reports progress as events (events.py).

Reuse (finetune, math): build a model (fresh, or loaded from a checkpoint; freeze layers by
setting ``requires_grad = False``: only trainable parameters reach the optimizer), a
``WindowStream`` over any token arrays (with a loss mask per array if only some targets count),
``ValWindows`` for validation, settings of a ``TrainSettings`` subclass (early stopping is
``early_stop_patience``) and a ``RunSpec``; then ``Trainer(...).run()``.

One optimizer step = ``accum`` micro-batches per process x ``world`` processes. Each
micro-batch's mean loss is weighted by its share of the step's counted targets (times
``world``, which DDP divides back out), so the accumulated gradient is exactly the gradient of
the mean loss over the whole step, masked or not.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from minigpt_cli.checkpoint import unwrap
from minigpt_cli.errors import MinigptError
from minigpt_cli.runtime import autocast
from minigpt_cli.tokenizer import Tokenizer
from minigpt_cli.train import budget
from minigpt_cli.train import checkpoints as C
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train import machine as M
from minigpt_cli.train.faults import Faults
from minigpt_cli.train.flops import device_peak, flops_per_token
from minigpt_cli.train.guard import Guard
from minigpt_cli.train.loader import ValWindows, WindowStream, step_windows
from minigpt_cli.train.metrics import MetricsLog, check_tensorboard
from minigpt_cli.train.optim import build_optimizer, describe
from minigpt_cli.train.schedule import build_schedule
from minigpt_cli.train.state import TrainerState


@dataclass
class RunSpec:
    """What the loop needs besides the model, the data and the settings."""

    run_dir: Path
    tokenizer: Tokenizer
    micro_batch: int
    seq_len: int
    accum: int
    dist: D.Dist
    dtype: torch.dtype  # compute dtype (autocast); weights stay float32
    data_id: str | None = None  # manifest hash of the training data
    extra: dict = field(default_factory=dict)  # stored in every model.safetensors
    resume: Path | None = None
    notes: tuple[str, ...] = ()
    weights: C.WeightsIO | None = None  # custom weight saving/restoring (finetune's LoRA)
    faults: Faults | None = None  # --inject-faults (train/faults.py)

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.seq_len * self.accum * self.dist.world


class Stop:
    """SIGINT / SIGTERM: finish the step, save, exit cleanly. Another Ctrl-C more than
    ``GRACE`` seconds later interrupts at once; signals within it are the same request (under
    torchrun a worker gets the terminal's SIGINT and then torchrun's forwarded one)."""

    GRACE = 2.0

    def __init__(self) -> None:
        self.requested: str | None = None
        self._at = 0.0
        self._previous: dict = {}

    def __enter__(self) -> Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested is None:
            self.requested, self._at = name, time.monotonic()
        elif name == "SIGINT" and time.monotonic() - self._at > self.GRACE:
            raise KeyboardInterrupt

    def __exit__(self, *exc) -> None:
        for sig, prev in self._previous.items():
            signal.signal(sig, prev)


class Trainer:
    def __init__(self, model, train: WindowStream, val: ValWindows | None, settings,
                 spec: RunSpec, listener: E.Listener = E.ignore) -> None:
        self.s, self.spec, self.emit = settings, spec, listener
        self.d = spec.dist
        self.device = spec.dist.device
        self.raw = unwrap(model).to(self.device)
        self.train_data, self.val = train, val
        if settings.activation_checkpointing:
            if not hasattr(type(self.raw), "gradient_checkpointing"):
                raise MinigptError("--activation-checkpointing: this model class does not "
                                   "support it (no gradient_checkpointing switch).")
            self.raw.gradient_checkpointing = True
        if settings.tensorboard:
            check_tensorboard()
        self.raw.train()
        self.optimizer = build_optimizer(self.raw, settings, self.device)
        self.trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        fp16 = spec.dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.schedule = build_schedule(settings)
        self.state = TrainerState(world=self.d.world, tokens_per_step=spec.tokens_per_step,
                                  seq_len=spec.seq_len, manifest_hash=spec.data_id)
        self.guard = Guard(settings.guard_spike_factor, settings.guard_spike_steps)
        self.fpt = flops_per_token(self.raw.config, spec.seq_len)
        self.peak = None
        self.metrics: MetricsLog | None = None
        self.last_ckpt: Path | None = None
        self.cap = settings.step_cap()  # None: no step limit (a --max-time run)
        self._clock: tuple[float, float] = (time.perf_counter(), 0.0)  # (start, elapsed then)
        self.pace = budget.Pace()
        self._last_lr = 0.0
        self.model = self.raw
        if settings.compile:
            self.model = torch.compile(self.raw)
        self.model = D.wrap_ddp(self.model, self.d)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> E.RunFinished:
        s, spec = self.s, self.spec
        notes = list(spec.notes) + describe(self.optimizer)
        if spec.resume is not None:
            notes += C.restore(self, spec.resume)
            self.last_ckpt = spec.resume
        self.peak = s.peak_flops or device_peak(self.device, spec.dtype)
        if self.d.main:
            spec.run_dir.mkdir(parents=True, exist_ok=True)
            self.metrics = MetricsLog(spec.run_dir, self.state.step if spec.resume else None,
                                      s.tensorboard)
            M.record(spec.run_dir, self.state.step,
                     M.describe(self.device, spec.dtype, self.d.world, self.peak))
            self._emit(E.RunStarted(spec.run_dir, self.state.step, self.cap or 0,
                                    self.raw.num_params(), spec.tokens_per_step, spec.micro_batch,
                                    spec.seq_len, spec.accum, self.d.world, str(self.device),
                                    str(spec.dtype).split(".")[-1], spec.resume, tuple(notes),
                                    s.max_time))
        reason = "max_steps"
        if spec.resume is not None:
            C.restore_rng_streams(self)  # the last thing before the first step
        self._clock = (time.perf_counter(), self.state.elapsed)
        try:
            with Stop() as stop:
                while self.cap is None or self.state.step < self.cap:
                    step = self.state.step + 1
                    t0 = time.perf_counter()
                    loss, norm, skipped, stop_all = self._step(step, stop)
                    dt = time.perf_counter() - t0
                    self.state.elapsed = self.elapsed()
                    self.pace.observe(step, self.state.elapsed)
                    self._after_step(step, loss, norm, skipped, dt)
                    verdict = self._last_verdict
                    if verdict.rollback:
                        self._emit_guard(step, "rollback", verdict.reason)
                        C.rollback(self, step)
                        continue
                    if stop_all:
                        reason = "signal"
                        break
                    if self._periodic(step):
                        reason = "early_stop"
                        break
                    if self._out_of_time(dt):
                        reason = "max_time"
                        break
                final_eval = reason != "signal" and self.state.val_loss is None
                if final_eval and self.val is not None and self.state.step > 0:
                    self._evaluate(self.state.step)
                if self.last_ckpt is None or C.step_of(self.last_ckpt) != self.state.step:
                    C.save(self, "signal" if reason == "signal" else "final")
        finally:
            if self.metrics is not None:
                self.metrics.close()
        done = E.RunFinished(self.state.step, reason, spec.run_dir, self.last_ckpt,
                             self.state.best_val, self.state.best_step, self.state.elapsed)
        self._emit(done)
        return done

    def elapsed(self) -> float:
        """Training wall-clock seconds so far, over all segments of the run."""
        start, before = self._clock
        return before + time.perf_counter() - start

    def _out_of_time(self, step_time: float) -> bool:
        """--max-time: are the budget's steps done, or would one more step end past the budget?
        (every rank gets the same answer: stop when any rank's clock says so)"""
        if self.s.max_time is None:
            return False
        if self.state.budget_steps is not None and self.state.step >= self.state.budget_steps:
            return True
        late = self.elapsed() + step_time > self.s.max_time
        return bool(D.all_sum(self.d, [float(late)], self.device)[0]) if self.d.enabled else late

    def _emit(self, event) -> None:
        if self.d.main:
            self.emit(event)

    def _emit_guard(self, step: int, action: str, message: str) -> None:
        if self.d.main:
            self.metrics.write({"step": step, "event": action, "message": message})
        self._emit(E.GuardEvent(step, action, message))

    # -- one optimizer step ----------------------------------------------------------------
    def _step(self, step: int, stop: Stop):
        s, spec, d = self.s, self.spec, self.d
        B, A = spec.micro_batch, spec.accum
        refs = self.train_data.take(d.world * A * B)  # (world * accum * B, 2): the whole step
        micro = step_windows(refs, d.rank, d.world, A, B)
        total = self._counted(refs)
        acc = torch.zeros((), dtype=torch.float64, device=self.device)
        self.state.val_loss = None
        faults, count = spec.faults, self.state.tokens_seen // spec.tokens_per_step + 1
        for a, refs_a in enumerate(micro):
            batch = self.train_data.gather(refs_a).to(self.device)
            n = batch.target_count()
            sync = a == A - 1 or not d.enabled
            with (contextlib.nullcontext() if sync else self.model.no_sync()):
                with autocast(self.device, spec.dtype):
                    logits, loss = self.model(batch.x, batch.y, loss_mask=batch.mask)
                if n == 0:  # nothing counts here: a zero that still reaches every weight
                    loss = logits.float().sum() * 0.0
                if faults is not None:
                    loss = faults.loss(count, loss)
                self.scaler.scale(loss * (n * d.world / total)).backward()
            acc += loss.detach().double() * n
        if faults is not None:
            faults.before_update(count)
        stop_here = float(stop.requested is not None)  # a signal during this step stops after it
        loss_sum, stop_votes = D.all_sum(d, [acc.item(), stop_here], self.device)
        loss_value = loss_sum / total
        if self.scaler.is_enabled():
            self.scaler.unscale_(self.optimizer)
        clip = s.grad_clip if s.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, clip, foreach=True))
        verdict = self.guard.check(step, loss_value, norm)
        skipped = not verdict.update
        if self.scaler.is_enabled() and math.isfinite(loss_value) and not math.isfinite(norm):
            verdict = type(verdict)(True, False, None)  # the gradient scaler handles overflow
        self._last_verdict = verdict
        if verdict.update:
            lr = self._last_lr = self.lr()
            for g in self.optimizer.param_groups:
                g["lr"] = lr * g.get("lr_ratio", 1.0)  # Muon's groups: muon_lr / lr
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif verdict.reason:
            self._emit_guard(step, "skip", verdict.reason)
        self.optimizer.zero_grad(set_to_none=True)
        self.state.step = step
        self.state.tokens_seen += spec.tokens_per_step
        return loss_value, norm, skipped, stop_votes > 0

    def lr(self) -> float:
        """The LR of the next update: by step; by the share of the budget spent when --max-time
        is the only limit (with --max-steps too, the steps set the schedule and the time is a
        hard stop)."""
        st = self.state
        if self.cap is not None:
            return self.schedule.lr(st.step) * st.lr_scale
        used = budget.share_used(st.step, self.elapsed(), self.s.max_time, st.budget_steps)
        return self.schedule.lr_in_budget(st.step, used) * st.lr_scale

    def plan_budget(self) -> None:
        """Under a --max-time budget alone, fix the steps it allows when the first checkpoint
        is written (train/budget.py): the pace counts the steps since the first one, the
        evaluation just done and this checkpoint's weights and optimizer state, written."""
        st = self.state
        if self.cap is not None or self.s.max_time is None or st.budget_steps is not None:
            return
        now = self.elapsed()
        pace = self.pace.seconds_per_step(st.step, now)
        if pace is not None:
            st.budget_steps = budget.steps_allowed(st.step, now, self.s.max_time, pace)

    def share_budget(self) -> None:
        """Every rank takes rank 0's budget plan (a collective: all ranks call it)."""
        if not self.d.enabled:
            return
        mine = float(self.state.budget_steps or 0) if self.d.main else 0.0
        steps = int(D.all_sum(self.d, [mine], self.device)[0])
        self.state.budget_steps = steps or None

    def _counted(self, refs) -> int:
        """Targets that count in the whole step (every rank's windows)."""
        if not self.train_data.has_mask:
            return len(refs) * self.spec.seq_len
        return max(1, self.train_data.gather(refs).target_count())

    def _after_step(self, step, loss, norm, skipped, dt) -> None:
        if not self.d.main:
            return
        tps = self.spec.tokens_per_step / max(dt, 1e-9)
        mfu = self.fpt * tps / (self.peak * self.d.world) if self.peak else None
        lr = self.schedule.lr(step - 1) * self.state.lr_scale if self.cap is not None \
            else self._last_lr
        event = E.StepEvent(step, self.cap or 0, loss, lr, norm, self.state.tokens_seen, tps,
                            mfu, self.state.elapsed, dt, skipped, self.s.max_time)
        if step % self.s.log_every == 0 or step == self.cap:
            rec = {"step": step, "loss": loss, "lr": lr, "grad_norm": norm,
                   "tokens_seen": self.state.tokens_seen, "tok_per_s": tps, "mfu": mfu,
                   "elapsed": self.state.elapsed}
            if skipped:
                rec["skipped"] = True
            self.metrics.write(rec)
        self._emit(event)

    # -- eval, samples, checkpoints --------------------------------------------------------
    def _periodic(self, step: int) -> bool:
        """Eval / sample / checkpoint when due; True when early stopping says stop."""
        s = self.s
        stop = False
        ckpt_due = s.checkpoint_every > 0 and step % s.checkpoint_every == 0
        eval_due = s.eval_every > 0 and step % s.eval_every == 0
        last = self.cap is not None and step >= self.cap
        if self.val is not None and (eval_due or ckpt_due) and not last:
            stop = self._evaluate(step)
        if s.sample_every > 0 and step % s.sample_every == 0 and self.d.main:
            self._sample(step)
        if ckpt_due and not last:
            C.save(self, "periodic")
        return stop

    @torch.no_grad()
    def _evaluate(self, step: int) -> bool:
        from minigpt_cli.evals.loss import evaluate_loss  # the code `minigpt eval loss` runs

        s, spec = self.s, self.spec
        batches = self.val.batches(spec.micro_batch, s.eval_batches, self.d.rank, self.d.world)
        sums = evaluate_loss(self.raw, batches, device=self.device, dtype=spec.dtype)
        total, count = D.all_sum(self.d, [sums.nats, float(sums.tokens)], self.device)
        val = total / max(count, 1.0)
        st = self.state
        st.val_loss = val
        best = st.best_val is None or val < st.best_val
        if best:
            st.best_val, st.best_step, st.stale_evals = val, step, 0
        else:
            st.stale_evals += 1
        if self.d.main:
            self.metrics.write({"step": step, "val_loss": val})
            self._emit(E.EvalEvent(step, val, best))
        patience = s.early_stop_patience
        return patience is not None and st.stale_evals >= patience

    def _sample(self, step: int) -> None:
        from minigpt_cli.sampling import SamplingParams, generate

        tok = self.spec.tokenizer
        prompt = tok.encode(self.s.sample_prompt, allow_special=True) if self.s.sample_prompt \
            else [tok.eot_id]
        prompt = prompt[-(self.raw.config.block_size - 1):]
        gen = torch.Generator(device=self.device).manual_seed(self.s.seed + step)  # own RNG
        params = SamplingParams(self.s.sample_tokens, temperature=1.0, top_k=200)
        ids = [int(t[0]) for t in generate(self.raw, prompt, params, 1, gen, tok.eot_id)]
        self.raw.train()
        ids = [i for i in ids if i != tok.eot_id]
        self._emit(E.SampleEvent(step, tok.decode(ids)))
