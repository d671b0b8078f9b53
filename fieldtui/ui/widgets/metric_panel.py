"""Live metrics: a bounded history per metric (plain Python) and the panel that draws it.

Samples may arrive thousands of times a second; they only land in :class:`TelemetryBuffer`
(deques, a counter). The panel is redrawn from the buffer on a timer, and only the rows whose
metric changed since the last redraw are touched.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Sparkline, Static

from fieldtui.ui.text import clean

#: Samples kept per metric for its sparkline.
DEFAULT_WINDOW = 120
#: The message rate is measured over this many seconds.
RATE_WINDOW = 10.0
#: Raw messages kept for the message log.
LOG_KEEP = 200


def format_value(value: object) -> str:
    """A metric value as a technician reads it: ``24.6``, ``540``, ``true``, ``online``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return clean(value, 24)


def _plottable(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


@dataclass(slots=True)
class MetricSeries:
    """One metric: its latest value and the last ``window`` plottable values."""

    values: deque[float]
    latest: object = None
    #: Bumped on every new value, so a redraw can skip metrics that did not change.
    version: int = 0


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    timestamp: datetime
    backend: str
    metrics: dict[str, object]

    def line(self) -> str:
        body = " ".join(f"{clean(k, 40)}={format_value(v)}" for k, v in self.metrics.items())
        return f"{self.timestamp:%H:%M:%S.%f}"[:-3] + f" {clean(self.backend, 20)} {body}"


@dataclass(slots=True)
class TelemetryBuffer:
    """Everything the telemetry screen shows, accumulated cheaply between redraws."""

    window: int = DEFAULT_WINDOW
    rate_window: float = RATE_WINDOW
    log_keep: int = LOG_KEEP
    metrics: dict[str, MetricSeries] = field(default_factory=dict)
    #: Monotonic arrival times within the rate window.
    arrivals: deque[float] = field(default_factory=deque)
    #: The last ``log_keep`` messages, and how many were ever added (to write only new ones).
    recent: deque[LoggedMessage] = field(default_factory=deque)
    total: int = 0
    #: Anything new since the last redraw.
    dirty: bool = False
    started: float | None = None

    def add(
        self, timestamp: datetime, backend: str, metrics: dict[str, object], now: float | None = None
    ) -> None:
        now = time.monotonic() if now is None else now
        if self.started is None:
            self.started = now
        for name, value in metrics.items():
            series = self.metrics.get(name)
            if series is None:
                series = self.metrics[name] = MetricSeries(deque(maxlen=self.window))
            series.latest = value
            series.version += 1
            plotted = _plottable(value)
            if plotted is not None:
                series.values.append(plotted)
        self.arrivals.append(now)
        self.recent.append(LoggedMessage(timestamp, backend, metrics))
        if len(self.recent) > self.log_keep:
            self.recent.popleft()
        self.total += 1
        self.dirty = True

    def rate(self, now: float | None = None) -> float:
        """Messages per second over the last ``rate_window`` seconds."""
        now = time.monotonic() if now is None else now
        cutoff = now - self.rate_window
        arrivals = self.arrivals
        while arrivals and arrivals[0] < cutoff:
            arrivals.popleft()
        if not arrivals or self.started is None:
            return 0.0
        span = min(self.rate_window, max(now - self.started, 1.0))
        return len(arrivals) / span

    def messages_since(self, seen_total: int) -> list[LoggedMessage]:
        """Messages added after the first ``seen_total`` (at most the ``log_keep`` kept)."""
        missing = min(self.total - seen_total, len(self.recent))
        if missing <= 0:
            return []
        return list(self.recent)[-missing:]


class MetricRow(Horizontal):
    """``name  value  ▁▂▅▇█▆``: one metric."""

    def __init__(self, name: str) -> None:
        super().__init__(classes="sparkline-row")
        self.metric = name
        self.shown_version = -1

    def compose(self) -> ComposeResult:
        yield Static(Text(clean(self.metric, 40), no_wrap=True, overflow="ellipsis"), classes="metric-name")
        yield Static("", classes="metric-value")
        yield Sparkline([], classes="metric-sparkline")

    def show(self, series: MetricSeries) -> None:
        if series.version == self.shown_version:
            return
        self.shown_version = series.version
        self.query_one(".metric-value", Static).update(
            Text(format_value(series.latest), no_wrap=True, overflow="ellipsis"), layout=False
        )
        sparkline = self.query_one(Sparkline)
        # Words (a status, a connection type) have no line to draw.
        sparkline.display = bool(series.values)
        sparkline.data = list(series.values)


class MetricPanel(VerticalScroll):
    """One row per metric, in the order metrics first arrived."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, MetricRow] = {}

    def show(self, buffer: TelemetryBuffer) -> None:
        new = [MetricRow(name) for name in buffer.metrics if name not in self._rows]
        if new:
            for row in new:
                self._rows[row.metric] = row
            self.mount_all(new)
            # Rows just mounted compose on the next tick: draw them then.
            self.call_after_refresh(self._show_rows, buffer)
            return
        self._show_rows(buffer)

    def _show_rows(self, buffer: TelemetryBuffer) -> None:
        for name, series in buffer.metrics.items():
            row = self._rows.get(name)
            if row is not None and row.is_mounted and row.children:
                row.show(series)

    def displayed(self) -> dict[str, str]:
        """What each row shows now (for tests and screen readers): metric -> value text."""
        shown: dict[str, str] = {}
        for name, row in self._rows.items():
            if row.children:
                value = row.query_one(".metric-value", Static).content
                shown[name] = value.plain if isinstance(value, Text) else str(value)
        return shown
