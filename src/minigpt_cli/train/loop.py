"""THE training loop: pretrain and finetune differ only in what setup.py hands it (initial
weights, data, settings). It knows nothing about the command line: it writes the run folder
(rank 0) and reports progress as events (events.py). It owns the run's parts (model,
optimizer, gradient scaler, guard, data stream and the explicit ``TrainerState``) and hands
them to the ``Checkpointer`` to save or restore.

One optimizer step = ``accum`` micro-batches per process x ``world`` processes. Each
micro-batch's mean loss is weighted by its share of the step's counted targets (times
``world``, which DDP divides back out), so the accumulated gradient is exactly the gradient of
the mean loss over the whole step, masked or not.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch

from minigpt_cli import allocator
from minigpt_cli.model_file import unwrap
from minigpt_cli.runtime import autocast
from minigpt_cli.train import budget
from minigpt_cli.train import distributed as D
from minigpt_cli.train import events as E
from minigpt_cli.train import machine as M
from minigpt_cli.train.checkpointer import Checkpointer, Parts
from minigpt_cli.train.flops import device_peak, flops_per_token
from minigpt_cli.train.guard import Guard, Verdict
from minigpt_cli.train.loader import Batch, ValWindows, WindowStream, step_windows
from minigpt_cli.train.metrics import MetricsLog
from minigpt_cli.train.optim import build_optimizer, describe
from minigpt_cli.train.probes import sample_text, validation_loss
from minigpt_cli.train.rollback import roll_back
from minigpt_cli.train.schedule import build_schedule
from minigpt_cli.train.spec import RunSpec
from minigpt_cli.train.state import TrainerState
from minigpt_cli.train.step_folder import step_of
from minigpt_cli.train.stop import Stop


def compile_blocks(model: torch.nn.Module, backend: str = "inductor") -> None:
    """``--compile``: torch.compile each transformer block (torchtitan's per-block compile),
    not the whole model. The blocks are the same code, so one block's graphs serve them all:
    a cold compile of the 4-layer Nietzsche recipe took ~30 s this way against over 60 s for
    the whole model, at the same speed afterwards. The compiled blocks are kept beside the
    plain ones (``GPT.compiled_blocks``) and used for training forward passes only, so
    parameter names and checkpoints are unchanged (no ``_orig_mod``) and evaluation, samples
    and the KV cache run the plain blocks without recompiling."""
    model.compiled_blocks = [torch.compile(block, backend=backend) for block in
                             model.transformer.h]


@dataclass(frozen=True)
class StepResult:
    loss: float  # mean over the step's counted targets, all ranks
    grad_norm: float
    lr: float  # the LR of this step's update (the schedule's, had it been applied)
    verdict: Verdict  # the guard's: update, skip or roll back
    stop: bool  # a signal arrived on some rank during the step


class Trainer:
    def __init__(self, model, train: WindowStream, val: ValWindows | None, settings,
                 spec: RunSpec, listener: E.Listener = E.ignore) -> None:
        self.s, self.spec, self.emit = settings, spec, listener
        self.d, self.device = spec.dist, spec.dist.device
        self.raw = unwrap(model).to(self.device)
        self.train_data, self.val = train, val
        self.raw.gradient_checkpointing = settings.activation_checkpointing
        self.raw.train()
        self.optimizer = build_optimizer(self.raw, settings, self.device)
        self.trainable = [p for g in self.optimizer.param_groups for p in g["params"]]
        scaler = torch.amp.GradScaler(self.device.type, enabled=spec.dtype == torch.float16)
        state = TrainerState(world=self.d.world, tokens_per_step=spec.tokens_per_step,
                             seq_len=spec.seq_len, manifest_hash=spec.data_id,
                             dtype=str(spec.dtype).removeprefix("torch."))
        guard = Guard(settings.guard_spike_factor, settings.guard_spike_steps)
        self.parts = Parts(self.raw, self.optimizer, scaler, guard, train, state)
        self.checkpointer = Checkpointer(spec.run_dir, self.d, self.device, spec.tokenizer,
                                         spec.data_id, spec.extra, settings.keep_last,
                                         settings.keep_best, spec.weights)
        self.schedule = build_schedule(settings)
        self.fpt = flops_per_token(self.raw.config, spec.seq_len)
        self.peak: float | None = None
        self.metrics: MetricsLog | None = None
        self.last_ckpt = spec.resume
        self.cap = settings.step_cap()  # None: no step limit (a --max-time run)
        self.pace = budget.Pace()
        self._clock: tuple[float, float] = (time.perf_counter(), 0.0)  # (start, elapsed then)
        if settings.compile:
            compile_blocks(self.raw)
        self.model = self.raw
        self.model = D.wrap_ddp(self.model, self.d)

    @property
    def state(self) -> TrainerState:
        return self.parts.state

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> E.RunFinished:
        st = self._start()
        reason = "max_steps"
        self._clock = (time.perf_counter(), st.elapsed)
        try:
            with Stop() as stop:
                while self.cap is None or st.step < self.cap:
                    step = st.step + 1
                    faults0, t0 = M.minor_faults(), time.perf_counter()
                    result = self.step(step, stop)
                    dt, faults = time.perf_counter() - t0, M.minor_faults() - faults0
                    st.elapsed = self.elapsed()
                    self.pace.observe(step, st.elapsed)
                    self._after_step(step, result, dt, faults)
                    if result.verdict.rollback:
                        self._emit_guard(step, "rollback", result.verdict.reason or "")
                        self.last_ckpt = roll_back(step, self.parts, self.checkpointer, self.s,
                                                   self._emit_guard) or self.last_ckpt
                        continue
                    if result.stop:
                        reason = "signal"
                        break
                    if self._periodic(step):
                        reason = "early_stop"
                        break
                    if self._out_of_time(dt):
                        reason = "max_time"
                        break
                if reason != "signal" and st.val_loss is None and self.val is not None \
                        and st.step > 0:
                    self._evaluate(st.step)
                if self.last_ckpt is None or step_of(self.last_ckpt) != st.step:
                    self._save("signal" if reason == "signal" else "final")
        finally:
            if self.metrics is not None:
                self.metrics.close()
        done = E.RunFinished(st.step, reason, self.spec.run_dir, self.last_ckpt, st.best_val,
                             st.best_step, st.elapsed)
        self._emit(done)
        return done

    def _start(self) -> TrainerState:
        """Restore (--resume), measure the peak, open the run folder's logs, say what runs;
        the restored RNG streams last of all. Returns the state the loop continues from."""
        s, spec = self.s, self.spec
        notes = list(spec.notes) + describe(self.optimizer)
        if spec.resume is not None:
            self.parts.state, more = self.checkpointer.restore(spec.resume, self.parts,
                                                               spec.tokens_per_step)
            notes += more
        self.peak = s.peak_flops or device_peak(self.device, spec.dtype)
        st = self.state
        allocators = D.gather_objects(self.d, allocator.current())
        if self.d.main:
            spec.run_dir.mkdir(parents=True, exist_ok=True)
            self.metrics = MetricsLog(spec.run_dir, st.step if spec.resume else None,
                                      s.tensorboard)
            M.record(spec.run_dir, st.step, M.describe(self.device, spec.dtype, self.d.world,
                                                       self.peak, allocators))
            self._emit(E.RunStarted(spec.run_dir, st.step, self.cap or 0, self.raw.num_params(),
                                    spec.tokens_per_step, spec.micro_batch, spec.seq_len,
                                    spec.accum, self.d.world, str(self.device),
                                    str(spec.dtype).split(".")[-1], spec.resume, tuple(notes),
                                    s.max_time))
        if spec.resume is not None:
            self.checkpointer.restore_rng(st)  # the last thing before the first step
        return st

    def elapsed(self) -> float:
        """Training wall-clock seconds so far, over all segments of the run."""
        start, before = self._clock
        return before + time.perf_counter() - start

    def _out_of_time(self, step_time: float) -> bool:
        return self.s.max_time is not None and budget.spent(
            self.state, self.s.max_time, self.elapsed() + step_time, self.d, self.device)

    def _emit(self, event) -> None:
        if self.d.main:
            self.emit(event)

    def _emit_guard(self, step: int, action: str, message: str) -> None:
        if self.d.main:
            self.metrics.write({"step": step, "event": action, "message": message})
        self._emit(E.GuardEvent(step, action, message))

    # -- one optimizer step ----------------------------------------------------------------
    def step(self, step: int, stop: Stop) -> StepResult:
        """Take the step's windows, run its micro-batches, let the guard judge, update."""
        spec, d, st = self.spec, self.d, self.state
        refs = self.train_data.take(d.world * spec.accum * spec.micro_batch)  # the whole step
        micro = step_windows(refs, d.rank, d.world, spec.accum, spec.micro_batch)
        total = self.train_data.counted_targets(refs)  # every rank's windows
        taken = st.tokens_seen // spec.tokens_per_step + 1  # steps taken, replays included
        st.val_loss = None
        acc = torch.zeros((), dtype=torch.float64, device=self.device)
        for a, refs_a in enumerate(micro):
            batch = self.train_data.gather(refs_a).to(self.device)
            acc += self.forward_backward(batch, total, sync=a == spec.accum - 1, taken=taken)
        if spec.faults is not None:
            spec.faults.before_update(taken)
        stop_here = float(stop.requested is not None)  # a signal during this step stops after it
        loss_sum, stop_votes = D.all_sum(d, [acc.item(), stop_here], self.device)
        loss = loss_sum / total
        scaler = self.parts.scaler
        if scaler.is_enabled():
            scaler.unscale_(self.optimizer)
        clip = self.s.grad_clip if self.s.grad_clip > 0 else math.inf
        norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, clip, foreach=True))
        verdict = self.parts.guard.check(step, loss, norm)
        if scaler.is_enabled() and math.isfinite(loss) and not math.isfinite(norm):
            verdict = Verdict(True, False, None)  # the gradient scaler handles overflow
        lr = self.lr()
        if verdict.update:
            self.update(lr)
        elif verdict.reason:
            self._emit_guard(step, "skip", verdict.reason)
        self.optimizer.zero_grad(set_to_none=True)
        st.step = step
        st.tokens_seen += spec.tokens_per_step
        return StepResult(loss, norm, lr, verdict, stop_votes > 0)

    def forward_backward(self, batch: Batch, total: int, sync: bool = True,
                         taken: int = 0) -> torch.Tensor:
        """One micro-batch: forward, backward of its share of the step's mean loss; returns
        its summed loss (float64). ``sync``: the last micro-batch, when DDP reduces."""
        n = batch.target_count()
        no_sync = self.d.enabled and not sync
        with self.model.no_sync() if no_sync else contextlib.nullcontext():
            with autocast(self.device, self.spec.dtype):
                # CPU: head + loss fused; nothing counted: a 0.0 that reaches every weight
                _, loss = self.model(batch.x, batch.y, loss_mask=batch.mask, need_logits=False)
            if self.spec.faults is not None:
                loss = self.spec.faults.loss(taken, loss)
            self.parts.scaler.scale(loss * (n * self.d.world / total)).backward()
        return loss.detach().double() * n

    def update(self, lr: float) -> None:
        """Apply the summed gradients at ``lr`` (Muon's groups keep their ratio to it)."""
        for g in self.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_ratio", 1.0)
        self.parts.scaler.step(self.optimizer)
        self.parts.scaler.update()

    def lr(self) -> float:
        """The LR of the next update: by step; by the share of the budget spent when --max-time
        is the only limit (with --max-steps too, the steps set the schedule and the time is a
        hard stop)."""
        st = self.state
        if self.cap is not None:
            return self.schedule.lr(st.step) * st.lr_scale
        used = budget.share_used(st.step, self.elapsed(), self.s.max_time, st.budget_steps)
        return self.schedule.lr_in_budget(st.step, used) * st.lr_scale

    def _after_step(self, step: int, r: StepResult, dt: float, faults: int) -> None:
        if not self.d.main:
            return
        st = self.state
        tps = self.spec.tokens_per_step / max(dt, 1e-9)
        mfu = self.fpt * tps / (self.peak * self.d.world) if self.peak else None
        event = E.StepEvent(step, self.cap or 0, r.loss, r.lr, r.grad_norm, st.tokens_seen, tps,
                            mfu, st.elapsed, dt, not r.verdict.update, self.s.max_time, faults)
        if step % self.s.log_every == 0 or step == self.cap:
            self.metrics.write_step(event)
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
            self._save("periodic")
        return stop

    def _save(self, reason: str) -> None:
        st = self.state
        by_budget = self.cap is None and self.s.max_time is not None

        def plan() -> None:  # on rank 0, once the weights are written (budget.py)
            budget.plan_steps(st, self.pace, self.elapsed(), self.s.max_time)

        self.last_ckpt = self.checkpointer.save(self.parts, reason,
                                                before_state=plan if by_budget else None)
        if by_budget:
            budget.share_plan(st, self.d, self.device)
        self._emit(E.CheckpointEvent(st.step, self.last_ckpt, reason))

    def _evaluate(self, step: int) -> bool:
        """Validation loss now; True when early stopping says stop."""
        s = self.s
        val = validation_loss(self.raw, self.val, self.spec.micro_batch, s.eval_batches, self.d,
                              self.spec.dtype)
        best = self.state.record_eval(step, val)
        if self.d.main:
            self.metrics.write({"step": step, "val_loss": val})
            self._emit(E.EvalEvent(step, val, best))
        return s.early_stop_patience is not None and \
            self.state.stale_evals >= s.early_stop_patience

    def _sample(self, step: int) -> None:
        s = self.s
        text = sample_text(self.raw, self.spec.tokenizer, s.sample_prompt, s.sample_tokens,
                           s.seed + step, self.device)
        self._emit(E.SampleEvent(step, text))
