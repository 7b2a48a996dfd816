"""Shows shot events: a rich progress display on a terminal, JSON lines for farms and pipes."""

from __future__ import annotations

import sys
from types import TracebackType

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from lipdub.events import ShotEvent


class Reporter:
    """Receives every shot event of a run and shows it the way the output wants."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self._console = Console(stderr=True)
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> Reporter:
        if not self.as_json:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: ShotEvent) -> None:
        """Show one event."""
        if self.as_json:
            click.echo(event.to_json())
            sys.stdout.flush()
            return
        assert self._progress is not None
        task = self._tasks.get(event.job)
        if task is None and event.kind in ("started", "progress"):
            task = self._progress.add_task(f"{event.job}", total=event.total or None)
            self._tasks[event.job] = task
        if event.kind == "progress" and task is not None:
            self._progress.update(
                task,
                completed=event.done,
                total=event.total,
                description=f"{event.job} {event.stage}",
            )
        elif event.kind == "started" and event.message:
            self._progress.console.print(f"[blue]started[/] {event.job}: {event.message}")
        elif event.kind == "warning":
            self._progress.console.print(f"[yellow]warning[/] {event.job}: {event.message}")
        elif event.kind == "finished":
            if task is not None:
                self._progress.update(task, description=f"{event.job} [green]done[/]")
            for out in event.outputs:
                self._progress.console.print(f"[green]wrote[/] {out}")
        elif event.kind == "skipped":
            self._progress.console.print(f"[cyan]skipped[/] {event.job}: {event.message}")
        elif event.kind == "failed":
            if task is not None:
                self._progress.update(task, description=f"{event.job} [red]failed[/]")
            self._progress.console.print(f"[red]failed[/] {event.job}: {event.message}")
