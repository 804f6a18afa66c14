"""The live terminal view of a run, and the summary at its end.

While the pipeline runs, :class:`LiveView` redraws (four times a second, on stderr, only
when it is a terminal) a table of the stages (events committed, events per second, lag) and
the last alerts; without a terminal it prints nothing until the summary. The alerts come
from the ``alerts`` topic itself, read by the view's own consumer group: one more fanout
consumer, which is how a second alert channel would join too.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from eventyard.demo.events import AlertSent
from eventyard.demo.progress import GroupProgress

__all__ = ["LiveView", "StageRate"]


@dataclass
class StageRate:
    """A stage's committed count over time, for events per second."""

    last: int = 0
    at: float = field(default_factory=time.monotonic)
    rate: float = 0.0

    def update(self, committed: int) -> float:
        now = time.monotonic()
        elapsed = now - self.at
        if elapsed >= 0.5:
            self.rate = (committed - self.last) / elapsed
            self.last, self.at = committed, now
        return self.rate


class LiveView:
    """Stage table and alert tail on a rich ``Live`` display (a no-op without a terminal)."""

    def __init__(self, console: Console, *, total_events: int, mode: str) -> None:
        self.console = console
        self.enabled = console.is_terminal
        self.total = total_events
        self.mode = mode
        self.published = 0
        self.alerts: deque[AlertSent] = deque(maxlen=8)
        self.alert_count = 0
        self._rates: dict[str, StageRate] = {}
        self._stages: list[GroupProgress] = []
        self._live: Live | None = None
        self._started = time.monotonic()

    def __enter__(self) -> LiveView:
        if self.enabled:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)

    def fed(self, published: int) -> None:
        self.published = published
        self._refresh()

    def alerted(self, alert: AlertSent) -> None:
        self.alerts.append(alert)
        self.alert_count += 1
        self._refresh()

    def stages(self, stages: list[GroupProgress]) -> None:
        self._stages = stages
        for stage in stages:
            self._rates.setdefault(stage.group, StageRate()).update(stage.committed)
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def _render(self) -> Group:
        elapsed = time.monotonic() - self._started
        head = Text.assemble(
            ("eventyard demo", "bold"),
            f"  {self.mode}  feed {self.published:,}/{self.total:,} listing events",
            f"  alerts {self.alert_count:,}  {elapsed:,.0f} s",
        )
        table = Table(title=None, expand=False)
        for column, justify in (
            ("stage", "left"),
            ("committed", "right"),
            ("events/s", "right"),
            ("lag", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        for stage in self._stages:
            rate = self._rates.get(stage.group, StageRate()).rate
            table.add_row(stage.group, f"{stage.committed:,}", f"{rate:,.0f}", f"{stage.lag:,}")
        alerts = Table(title="latest alerts", expand=False, show_header=True)
        for column in ("buy-box", "listing", "price", "why"):
            alerts.add_column(column)
        for alert in list(self.alerts):
            alerts.add_row(
                alert.BuyBox, alert.ListingKey, f"${alert.ListPrice:,}", Text(alert.Reason)
            )
        return Group(head, table, alerts)
