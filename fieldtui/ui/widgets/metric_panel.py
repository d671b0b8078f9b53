"""Live metrics: a bounded history per metric (plain Python) and the panel that draws it.

Samples may arrive thousands of times a second; they only land in :class:`TelemetryBuffer`
(deques, a counter). The panel is redrawn from the buffer on a timer, and only what changed is
touched: a value whose text is the same is not rewritten, and the sparklines (most of the bytes
a redraw sends to the terminal) are redrawn only when the screen asks for them, at a lower rate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from itertools import groupby

from rich.console import Console, ConsoleOptions
from rich.console import RenderResult as RichRenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.color import Color
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


#: Units of well-known metric names (lower case), for clouds whose messages do not state them.
UNITS: dict[str, str] = {
    "temperature": "°C",
    "temp": "°C",
    "humidity": "%",
    "battery": "%",
    "battery_level": "%",
    "batterylevel": "%",
    "rssi": "dBm",
    "signal": "dBm",
    "co2": "ppm",
    "pressure": "hPa",
    "airpressure": "hPa",
    "voltage": "V",
    "pm25": "µg/m³",
    "pm2_5": "µg/m³",
    "pm10": "µg/m³",
    "tvoc": "ppb",
    "lux": "lx",
    "illuminance": "lx",
    "uptime": "s",
    "check_in_duration": "s",
}


def unit_of(name: str) -> str:
    """The unit of a metric by its name (``temp_c`` and ``temperature`` are °C), or ""."""
    key = name.lower().replace("-", "_")
    if key in UNITS:
        return UNITS[key]
    for suffix, unit in (("_c", "°C"), ("_pct", "%"), ("_percent", "%"), ("_dbm", "dBm"), ("_v", "V")):
        if key.endswith(suffix):
            return unit
    return ""


def _plottable(value: object) -> float | None:
    # A yes/no has no line worth drawing: its value says it all.
    if isinstance(value, bool):
        return None
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
    #: Bumped on every plottable value: the sparkline is redrawn only when it moved.
    plotted: int = 0

    def copy(self) -> MetricSeries:
        """The series as it is now (a later value does not reach the copy)."""
        return MetricSeries(
            deque(self.values, maxlen=self.values.maxlen), self.latest, self.version, self.plotted
        )


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
    #: The newest message's own timestamp (for "last message N s ago").
    newest: datetime | None = None

    def add(
        self,
        timestamp: datetime,
        backend: str,
        metrics: Mapping[str, object],
        now: float | None = None,
        *,
        live: bool = True,
    ) -> None:
        """``live``: sent now, not history replayed when the stream opened (only live
        messages count in the rate)."""
        now = time.monotonic() if now is None else now
        if self.newest is None or timestamp > self.newest:
            self.newest = timestamp
        for name, value in metrics.items():
            series = self.metrics.get(name)
            if series is None:
                series = self.metrics[name] = MetricSeries(deque(maxlen=self.window))
            series.latest = value
            series.version += 1
            plotted = _plottable(value)
            if plotted is not None:
                series.values.append(plotted)
                series.plotted += 1
        if live:
            if self.started is None:
                self.started = now
            self.arrivals.append(now)
        self.recent.append(LoggedMessage(timestamp, backend, dict(metrics)))
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


BARS = "▁▂▃▄▅▆▇█"
#: Colours a sparkline is drawn in, from the min colour to the max colour (by bar height).
SPARKLINE_SHADES = 3


def sparkline_levels(data: Sequence[float], width: int) -> tuple[int, ...]:
    """Each column's bar (0-7) as Textual's Sparkline draws it: the max of each bucket."""
    top = len(BARS) - 1
    if width <= 0:
        return ()
    if not data:
        return (0,) * width
    if len(data) == 1:
        return (top,) * width
    values = list(data)
    low, high = min(values), max(values)
    extent = high - low or 1
    step = Fraction(len(values), width)
    buckets = [values[int(step * i) : int(step * (i + 1))] for i in range(width)]
    buckets = [bucket for bucket in buckets if bucket]
    levels: list[int] = []
    position, stride = 0.0, len(buckets) / width
    for _ in range(width):
        levels.append(min(top, int((max(buckets[int(position)]) - low) / extent * top)))
        position += stride
    return tuple(levels)


class _SparklineRuns:
    """A one-line sparkline: Textual's bars, in a few shades, written in runs of one shade.

    Textual colours each bar by its exact height, so every cell carries its own colour escape
    (about 24 bytes for a 3-byte glyph) and a 48-cell line costs ~1.2 KB a redraw. Here the bars
    take ``shades`` colours from the min to the max colour (low, middle, high) and neighbouring
    bars of one shade go out as one segment: about half the bytes with three shades (a sixth with
    one), the same bars.
    """

    def __init__(self, levels: Sequence[int], min_color: Color, max_color: Color, shades: int) -> None:
        self.levels = levels
        self.min_color = min_color
        self.max_color = max_color
        self.shades = max(1, shades)

    def _shade(self, level: int) -> int:
        return min(self.shades - 1, level * self.shades // len(BARS))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RichRenderResult:
        top = self.shades - 1
        for shade, run in groupby(self.levels, self._shade):
            color = self.min_color.blend(self.max_color, shade / top) if top else self.max_color
            yield Segment("".join(BARS[level] for level in run), Style.from_color(color.rich_color))


class RunSparkline(Sparkline):
    """Textual's Sparkline widget (same CSS, same component classes), drawn in runs of a shade."""

    shades = SPARKLINE_SHADES

    def render(self) -> RenderResult:
        if self.size.height != 1 or self.summary_function is not max:
            return super().render()
        _, base = self.background_colors
        min_color = base + (self.min_color or self.get_component_styles("sparkline--min-color").color)
        max_color = base + (self.max_color or self.get_component_styles("sparkline--max-color").color)
        levels = sparkline_levels(self.data or [], self.size.width)
        return _SparklineRuns(levels, min_color, max_color, self.shades)


class MetricRow(Horizontal):
    """``name  value  ▁▂▅▇█▆``: one metric."""

    def __init__(self, name: str) -> None:
        super().__init__(classes="sparkline-row")
        self.metric = name
        self.shown_version = -1
        self.shown_value: str | None = None
        self.shown_plotted = -1
        self.shown_levels: tuple[int, ...] = ()

    def compose(self) -> ComposeResult:
        unit = unit_of(self.metric)
        label = Text(clean(self.metric, 40), no_wrap=True, overflow="ellipsis")
        if unit:
            label.append(f" {unit}", style="dim")
        yield Static(label, classes="metric-name")
        yield Static("", classes="metric-value")
        yield RunSparkline([], classes="metric-sparkline")

    def show(self, series: MetricSeries, sparkline: bool = True) -> None:
        """Draw what changed: the value when its text differs, the sparkline when asked (and
        always on the row's first draw)."""
        first = self.shown_version < 0
        if series.version != self.shown_version:
            self.shown_version = series.version
            text = format_value(series.latest)
            if text != self.shown_value:
                self.shown_value = text
                self.query_one(".metric-value", Static).update(
                    Text(text, no_wrap=True, overflow="ellipsis"), layout=False
                )
        if (sparkline or first) and series.plotted != self.shown_plotted:
            self.shown_plotted = series.plotted
            line = self.query_one(RunSparkline)
            # Words (a status, a connection type) have no line to draw.
            line.display = bool(series.values)
            data = list(series.values)
            # A flat or unchanged picture (the same bars) is not sent again.
            levels = sparkline_levels(data, line.size.width)
            if first or levels != self.shown_levels or not levels:
                self.shown_levels = levels
                line.data = data
            else:
                line.set_reactive(RunSparkline.data, data)

    def sparkline_behind(self, series: MetricSeries) -> bool:
        return series.plotted != self.shown_plotted


class MetricPanel(VerticalScroll):
    """One row per metric, in the order metrics first arrived."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: dict[str, MetricRow] = {}

    def show(self, buffer: TelemetryBuffer, sparklines: bool = True) -> None:
        """Draw the buffer: values that changed, and the sparklines too when ``sparklines``."""
        new = [MetricRow(name) for name in buffer.metrics if name not in self._rows]
        if new:
            for row in new:
                self._rows[row.metric] = row
            self.mount_all(new)
            # Rows just mounted compose on the next tick: draw them then, with the values of
            # now (the buffer goes on filling meanwhile, and the screen may be paused by then).
            now = {name: series.copy() for name, series in buffer.metrics.items()}
            self.call_after_refresh(self._show_rows, now, sparklines)
            return
        self._show_rows(buffer.metrics, sparklines)

    def _show_rows(self, metrics: Mapping[str, MetricSeries], sparklines: bool = True) -> None:
        for name, series in metrics.items():
            row = self._rows.get(name)
            if row is not None and row.is_mounted and row.children:
                row.show(series, sparklines)

    def values_behind(self, buffer: TelemetryBuffer) -> bool:
        """True when a drawn row shows an older value than its metric has (a row drawn late,
        from the values of when it was mounted)."""
        for name, series in buffer.metrics.items():
            row = self._rows.get(name)
            if row is not None and row.shown_version >= 0 and row.shown_version != series.version:
                return True
        return False

    def sparklines_behind(self, buffer: TelemetryBuffer) -> bool:
        """True when a sparkline on screen is older than its metric's values."""
        for name, series in buffer.metrics.items():
            row = self._rows.get(name)
            if row is not None and row.sparkline_behind(series):
                return True
        return False

    def displayed(self) -> dict[str, str]:
        """What each row shows now (for tests and screen readers): metric -> value text."""
        shown: dict[str, str] = {}
        for name, row in self._rows.items():
            if row.children:
                value = row.query_one(".metric-value", Static).content
                shown[name] = value.plain if isinstance(value, Text) else str(value)
        return shown
