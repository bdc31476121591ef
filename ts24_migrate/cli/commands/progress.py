"""Progress bars for long CLI work (shown on a terminal, silent with --json or in pipes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ts24_migrate.runs.app import App

COMMANDS: list = []  # helpers only; no command here


@contextmanager
def table_progress(app: App, label: str) -> Iterator[Callable[[str, int, int], None] | None]:
    """Yield a callback(item, done, total) driving a progress bar, or None when not interactive."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if app.json_output or not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(item: str, done: int, total: int) -> None:
            bar.update(task, description=f"{label} {item}", completed=done, total=total)

        yield update
