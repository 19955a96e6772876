"""One rich progress display for a whole job (cluster/events.py): a bar per stage of tasks."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from minigpt_cli.commands.render import LiveView, err_console


class JobProgress(LiveView):
    def __init__(self) -> None:
        self._progress = Progress(TextColumn("{task.description:>10}"), BarColumn(bar_width=24),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=err_console)
        self._bars: dict[str, int] = {}

    def on_event(self, e) -> None:
        from minigpt_cli.cluster import events as job
        from minigpt_cli.commands.shard_view import finished
        from minigpt_cli.sharding import events as ev

        if isinstance(e, job.JobStarted):
            self._progress.console.print(
                f"job: {e.parts} part(s) on {e.executor} ({e.workers} worker(s)): "
                + " -> ".join(e.stages) + " -> merge")
            for stage, n in e.stages.items():
                if n:
                    self._bars[stage] = self._progress.add_task(stage, total=n)
        elif isinstance(e, job.TaskDone) and e.stage in self._bars:
            self._progress.update(self._bars[e.stage], completed=e.done, total=e.total)
        elif isinstance(e, ev.Finished):
            self._progress.stop()
            finished(e)
