"""Live telemetry of one device: latest value and sparkline per metric, message rate, raw log.

Samples arrive in a worker and only land in a :class:`TelemetryBuffer`; a 10 Hz timer redraws
what changed, so a device publishing thousands of messages a second costs at most ten redraws
a second. Values follow at that rate; the sparklines and the state line's counters, which are
most of the bytes a redraw sends (a lot over SSH), follow every ``sparkline_interval`` (0.5 s).
Leaving the screen cancels the worker, which closes the stream.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

from rich.text import Text
from textual import getters, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Log, Static
from textual.worker import Worker

from fieldtui.core.models import StreamEvent, StreamEventKind, TelemetrySample
from fieldtui.ui.app import FieldApp
from fieldtui.ui.text import age, clean
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.metric_panel import MetricPanel, TelemetryBuffer
from fieldtui.ui.widgets.status_bar import StatusBar

#: Redraws at most this often (seconds between redraws).
REDRAW_INTERVAL = 0.1
#: Sparklines and the message counters are redrawn at most this often (a multiple of the above).
SPARKLINE_INTERVAL = 0.5
LOG_LINES = 500
#: Messages shown whole by "v" (the newest).
MESSAGES_VIEWED = 50
#: A message older than this when it arrives is history replayed at the stream's start: shown,
#: but not counted in the message rate.
LIVE_AGE = 60.0
#: Freshness of the last message: (at most this many seconds old, word, style).
FRESHNESS = ((120.0, "fresh", "green"), (900.0, "late", "yellow"))
#: Most raw lines written per redraw (a flood would otherwise cost a repaint of hundreds).
LOG_BATCH = 40


def freshness(seconds: float) -> tuple[str, str]:
    """How fresh the last message is, in a word and its style."""
    for limit, word, style in FRESHNESS:
        if seconds <= limit:
            return word, style
    return "stale", "bold red"


class TelemetryScreen(Screen[None]):
    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("p", "pause", "Pause/resume", id="telemetry_pause"),
        Binding("l", "toggle_log", "Messages", id="telemetry_log"),
        Binding("v", "view_messages", "Read whole", id="telemetry_view"),
        Binding("escape", "back", "Back", id="telemetry_back"),
    ]

    def __init__(
        self,
        device_id: str,
        *,
        redraw_interval: float = REDRAW_INTERVAL,
        sparkline_interval: float = SPARKLINE_INTERVAL,
    ) -> None:
        super().__init__()
        self.device_id = device_id
        self.redraw_interval = redraw_interval
        #: Redraw ticks between two sparkline redraws (counted in ticks, not clock time).
        self.sparkline_every = max(1, round(sparkline_interval / redraw_interval))
        self._ticks = 0
        self._slow_tick = -self.sparkline_every
        self.buffer = TelemetryBuffer()
        self.paused = False
        #: How the stream stands: connecting, live, reconnecting, error, ended.
        self.stream_state = "connecting"
        self.stream_note = ""
        #: Redraws done (a test checks the cap) and samples shown by the last one.
        self.redraws = 0
        self.shown_total = 0
        self._logged_total = 0
        self._state_dirty = True
        self._state_drawn_at = 0.0
        #: The message count the state line shows (it lags the values by up to a slow tick).
        self._state_total = 0
        self._worker: Worker[None] | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(f" {clean(self.device_id)} · live telemetry", style="bold"), id="telemetry-title")
        yield Static("", id="telemetry-state")
        yield MetricPanel(id="telemetry-metrics")
        log = Log(max_lines=LOG_LINES, id="telemetry-log")
        log.display = False
        yield log
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()
        self.set_interval(self.redraw_interval, self._tick)
        self._worker = self._stream()
        self._redraw()

    def _tick(self) -> None:
        self._ticks += 1
        self._redraw()

    def on_unmount(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    # -- the stream ----------------------------------------------------------------------
    @work(exclusive=True, group="telemetry-stream")
    async def _stream(self) -> None:
        service = self.app.service
        if service is None:
            self._set_state("error", "still connecting to the clouds; leave and come back in a moment")
            return
        buffer = self.buffer
        stream = service.telemetry(self.device_id)
        try:
            async for item in stream:
                if isinstance(item, TelemetrySample):
                    live = (ui_now() - item.timestamp).total_seconds() <= LIVE_AGE
                    buffer.add(item.timestamp, item.backend, item.metrics, live=live)
                    if self.stream_state != "live":
                        self._set_state("live", "")
                elif isinstance(item, StreamEvent):
                    self._absorb_event(item)
        except Exception as exc:  # noqa: BLE001 - shown on the state line, never a traceback
            self._set_state("error", clean(exc))
            self.app.notify(f"Telemetry: {clean(exc)}", severity="error")
            return
        finally:
            if isinstance(stream, AsyncGenerator):
                try:
                    await stream.aclose()
                except Exception:  # noqa: BLE001 - closing must not hide why we stopped
                    pass
        self._set_state("ended", "every cloud stopped sending; leave and reopen to try again")

    def _absorb_event(self, event: StreamEvent) -> None:
        message = clean(event.message)
        if event.kind is StreamEventKind.CONNECTED:
            self._set_state("live", "")
        elif event.kind is StreamEventKind.RECONNECTING:
            self._set_state("reconnecting", f"{clean(event.backend)}: {message}")
        else:
            self._set_state("error", f"{clean(event.backend)}: {message}")

    def _set_state(self, state: str, note: str) -> None:
        self.stream_state = state
        self.stream_note = note
        self._state_dirty = True

    # -- drawing -------------------------------------------------------------------------
    def _redraw(self) -> None:
        """Called by the timer: draws only what changed; metrics and log hold still while paused.

        Values at every tick; sparklines and the state line's counters every
        ``sparkline_every`` ticks (the state line at once when the stream's state changes)."""
        buffer = self.buffer
        now = time.monotonic()
        slow_due = self._ticks - self._slow_tick >= self.sparkline_every
        panel = self.query_one(MetricPanel)
        metrics_due = not self.paused and (buffer.dirty or panel.values_behind(buffer))
        # Values drawn earlier while the sparklines waited for their turn: catch those up.
        sparklines_due = slow_due and not self.paused and (metrics_due or panel.sparklines_behind(buffer))
        if metrics_due or sparklines_due:
            self.redraws += 1
            if metrics_due:
                buffer.dirty = False
                self.shown_total = buffer.total
            panel.show(buffer, sparklines=sparklines_due)
            log = self.query_one(Log)
            if log.display and metrics_due:
                self._write_log(log)
        # The rate decays with no new samples: the state line is refreshed about once a second.
        state_due = (
            self._state_dirty
            or (slow_due and (self._state_total != self.shown_total or (buffer.dirty and self.paused)))
            or now - self._state_drawn_at >= 1.0
        )
        if state_due:
            if not (metrics_due or sparklines_due):
                self.redraws += 1
            self._draw_state(now)
        if slow_due and (sparklines_due or state_due):
            self._slow_tick = self._ticks

    def _write_log(self, log: Log) -> None:
        new = self.buffer.total - self._logged_total
        messages = self.buffer.messages_since(self._logged_total)[-LOG_BATCH:]
        self._logged_total = self.buffer.total
        if not messages:
            return
        lines = [message.line() for message in messages]
        if new > len(messages):
            # Faster than anyone reads: the newest lines only, and say how many were skipped.
            lines.insert(0, f"… {new - len(messages)} messages not shown ({self.buffer.rate():.0f} msg/s)")
        log.write_lines(lines)

    def _draw_state(self, now: float | None = None) -> None:
        self._state_dirty = False
        self._state_total = self.shown_total
        self._state_drawn_at = time.monotonic() if now is None else now
        buffer = self.buffer
        text = Text(no_wrap=True, overflow="ellipsis")
        state = self.stream_state
        if state == "live":
            text.append(" ● live", style="bold green")
        elif state == "reconnecting":
            text.append(" ◌ reconnecting…", style="bold yellow")
        elif state == "connecting":
            text.append(" ◌ connecting…", style="yellow")
        elif state == "ended":
            text.append(" ○ stream ended", style="bold red")
        else:
            text.append(" ✗ error", style="bold red")
        if self.stream_note:
            text.append(f" ({self.stream_note})", style="yellow" if state == "reconnecting" else "red")
        text.append(f" · {buffer.rate(now):.1f} msg/s · {self.shown_total} msgs", style="dim")
        if buffer.newest is not None:
            wall = ui_now()
            text.append(f" · last {age(buffer.newest, wall)} ", style="dim")
            text.append(*freshness((wall - buffer.newest).total_seconds()))
        if self.paused:
            held = buffer.total - self.shown_total
            text.append(f" · PAUSED, {held} new held (p resumes)", style="bold reverse")
        self.query_one("#telemetry-state", Static).update(text, layout=False)

    # -- actions -------------------------------------------------------------------------
    def action_pause(self) -> None:
        self.paused = not self.paused
        self._state_dirty = True
        self._redraw()

    def action_toggle_log(self) -> None:
        log = self.query_one(Log)
        log.display = not log.display
        if log.display:
            log.clear()
            self._logged_total = max(0, self.shown_total - len(self.buffer.recent))
            self._write_log(log)

    def action_view_messages(self) -> None:
        """The newest messages, whole: a long line in the log is cut at the screen's edge."""
        from fieldtui.ui.modals.message_view import MessageViewModal

        lines = [message.line() for message in list(self.buffer.recent)[-MESSAGES_VIEWED:]]
        count = "the last message" if len(lines) == 1 else f"the last {len(lines)} messages"
        self.app.push_screen(MessageViewModal(f"{clean(self.device_id)}: {count}", lines))

    def action_back(self) -> None:
        self.app.pop_screen()

    def displayed(self) -> dict[str, Any]:
        """The metric values on screen now (metric -> text)."""
        return self.query_one(MetricPanel).displayed()
