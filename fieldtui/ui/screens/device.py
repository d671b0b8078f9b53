"""One device across its clouds: facts, then telemetry, tasks, history and the raw payloads.

The view grows as the clouds answer (the cache, or what the lookup found, shows first), every
value a cloud disagrees on is shown with each cloud's word, and the technician's own changes
show as they go: queued, synced, failed with the cloud's words. Only actions the device's clouds
support are offered; the others are listed with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from rich.text import Text
from textual import getters, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from fieldtui.service.api import ActionEvent, BackendInfo, DeviceView, HistoryEntry, heard
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.device_diagnostics import DiagnosticsPane
from fieldtui.ui.screens.presence import screen_gone
from fieldtui.ui.text import age, clean, cloud_error, hanging, yes_no
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.waiting import CONNECTING
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar

#: action key -> (capabilities, any of which offers it, label)
DEVICE_ACTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "t": (("telemetry",), "telemetry"),
    "k": (("tasks", "commands"), "tasks & commands"),
    "s": (("installation_status",), "status"),
    "m": (("groups",), "move"),
    "x": (("commands",), "command"),
    "d": ((), "diagnostics"),
}
#: A draw met before the screen's widgets are up is tried again after this many seconds,
#: at most ``MAX_REDRAWS`` times in the screen's life.
REDRAW_DELAY = 0.05
MAX_REDRAWS = 200
#: Fields shown with each cloud's value when the clouds disagree.
_LABELS = {
    "name": "Name",
    "model": "Model",
    "firmware": "Firmware",
    "online": "Online",
    "group": "Group",
    "installation_status": "Install",
    "status": "Status",
}


def _plain(value: object) -> str:
    if isinstance(value, bool):
        return yes_no(value)
    return clean(getattr(value, "value", value))


def history_line(entry: HistoryEntry) -> Text:
    """``2026-01-05 08:00Z  things      installation  installed  by field-tech-3``."""
    line = Text(no_wrap=False)
    when = f"{entry.timestamp:%Y-%m-%d %H:%M}Z" if entry.timestamp else "(no time)        "
    line.append(f"{when}  ", style="dim")
    line.append(f"{clean(entry.backend, 10):<10} ", style="bold")
    line.append(f"{entry.kind.value:<12} ")
    line.append(clean(entry.summary, 40))
    if entry.state:
        style = "red" if entry.state.startswith(("failed", "error")) else ""
        line.append(f"  {clean(entry.state, 60)}", style=style)
    if entry.who:
        line.append(f"  by {clean(entry.who, 30)}", style="cyan")
    if entry.detail:
        line.append(f"  {clean(entry.detail, 60)}", style="dim")
    return line


class DeviceScreen(Screen[None]):
    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("t", "telemetry", "Telemetry", id="device_telemetry"),
        Binding("k", "tasks", "Tasks", id="device_tasks"),
        Binding("s", "set_status", "Status", id="device_status"),
        Binding("m", "move", "Move", id="device_move"),
        Binding("x", "command", "Command", show=False, id="device_command"),
        Binding("h", "show_tab('history')", "History", show=False, id="device_history"),
        Binding("r", "show_tab('raw')", "Raw", show=False, id="device_raw"),
        Binding("d", "show_tab('diagnostics')", "Diagnostics", show=False, id="device_diagnostics"),
        Binding("f5", "reload", "Reload", id="device_reload"),
    ]

    def __init__(self, device_id: str, view: DeviceView | None = None) -> None:
        super().__init__()
        self.device_id = device_id
        self.view: DeviceView | None = view
        #: What the lookup found: its clouds are not asked again on the first load.
        self._start = view
        #: False while clouds are still being asked.
        self.complete = False
        #: Draws put off because the widgets were not up yet (``_later``).
        self._redraws = 0

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(f" {clean(self.device_id)}", style="bold"), id="device-title")
        with TabbedContent(initial="overview", id="device-tabs"):
            with TabPane("Overview", id="overview"), VerticalScroll():
                yield Static("Looking the device up on every cloud…", id="device-facts", classes="facts")
                yield Static("", id="device-actions", classes="facts")
                yield Static("", id="device-errors", classes="inline-message")
            with TabPane("History", id="history"), VerticalScroll():
                yield Static("Reading the device's history…", id="device-history", classes="facts")
            with TabPane("Diagnostics", id="diagnostics"):
                yield DiagnosticsPane(self.device_id, id="device-diagnostics")
            with TabPane("Raw", id="raw"), VerticalScroll():
                yield Static("", id="device-raw", classes="facts")
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()
        if self.view is not None:
            self._render_view()
        self.load()

    # -- loading -------------------------------------------------------------------------
    def service_arrived(self) -> None:
        if self.view is None:
            self.load()

    @work(exclusive=True, group="device-load")
    async def load(self) -> None:
        service = self.app.service
        if service is None:
            self._say_connecting()
            return
        start, self._start = self._start, None  # a reload asks every cloud again
        self.complete = False
        view: DeviceView | None = None
        try:
            async for view in service.device_updates(self.device_id, start=start):
                if self._gone():
                    return  # left while the clouds answered (a scan opened another device)
                # The view only grows while the clouds answer: a partial answer with fewer
                # clouds than already shown (what the lookup found) waits for the rest.
                if self.view is not None and len(view.sources) < len(self.view.sources):
                    continue
                self.view = view
                self.app.absorb_view(view)
                self._render_view()
        except Exception as exc:  # noqa: BLE001 - shown inline, the app keeps running
            self.complete = True
            if self._gone():
                return
            self._say_failed(exc)
            return
        self.complete = True
        if self._gone():
            return
        if view is not None and view is not self.view:
            self.view = view  # the complete answer is the truth, even if it has fewer clouds
            self.app.absorb_view(view)
        self._render_view()
        self.load_history()

    def _say_connecting(self) -> None:
        if self._gone() or self.app.service is not None:
            return
        try:
            self.query_one("#device-facts", Static).update(CONNECTING)
        except NoMatches:
            self._later(self._say_connecting)  # its tabs are not up yet

    def _say_failed(self, exc: BaseException) -> None:
        if self._gone():
            return
        try:
            if self.view is None:
                self.query_one("#device-facts", Static).update(
                    Text(f"{clean(exc)}\n\nCheck the serial, or press F5 to try again.", style="bold red")
                )
            else:
                self.query_one("#device-errors", Static).update(Text(f"Refresh failed: {clean(exc)}"))
        except NoMatches:
            self._later(lambda: self._say_failed(exc))

    def outbox_changed(self, event: ActionEvent) -> None:
        """An action on this device moved (queued, synced, failed): show it at once."""
        if self.view is None or event.record.action.device != self.device_id:
            return
        view = self.view = heard(self.view, event.record)
        self.app.absorb_view(view)
        self._render_view()
        if event.record.state.final:
            self.load_history()

    # -- drawing -------------------------------------------------------------------------
    def _value(self, view: DeviceView, field: str, shown: str) -> Text:
        """``shown``, then the pending change of ``field``, then each cloud's value if they differ."""
        text = Text(shown)
        change = view.pending_for(field)
        if change is not None:
            style = "bold red" if change.state in ("failed", "conflict") else "yellow"
            text.append(f" → {clean(change.value)} · {clean(change.words(), 60)}", style=style)
        differs = view.disagreements().get(field)
        if differs:
            each = " · ".join(f"{clean(b)}: {_plain(v)}" for b, v in differs.items())
            text.append(f"  ({each})", style="dim")
        return text

    def _gone(self) -> bool:
        return screen_gone(self)

    def _render_view(self) -> None:
        view = self.view
        if view is None or self._gone():
            return
        try:
            self._draw(view)
        except NoMatches:
            # Its widgets are not up yet (an answer can beat the tabs' own compose on a slow
            # machine): draw once they are. Or they went while it drew (the app is closing it).
            self._later(self._render_view)

    def _later(self, draw: Callable[[], None]) -> None:
        """Call ``draw`` again shortly, unless the screen has gone (bounded: a screen whose
        widgets never come up stops asking)."""
        if self._gone() or self._redraws >= MAX_REDRAWS:
            return
        self._redraws += 1
        self.set_timer(REDRAW_DELAY, draw)

    def _draw(self, view: DeviceView) -> None:
        device = view.device
        now = ui_now()
        sources = ", ".join(
            f"{clean(s.backend)}[{s.kind.value}]" + (f" cached {age(s.fetched_at, now)}" if s.stale else "")
            for s in view.sources
        )
        if not self.complete:
            sources += " · asking the others…"
        location = f"{device.location.lat:.5f}, {device.location.lon:.5f}" if device.location else "—"
        status = device.installation_status
        stale = " (cached)" if view.stale else ""
        rows: list[tuple[str, Text]] = [
            ("Clouds", Text(sources or clean(device.backend))),
            ("Name", self._value(view, "name", clean(device.name) or "—")),
            ("Model", self._value(view, "model", clean(device.model) or "—")),
            ("Firmware", self._value(view, "firmware", clean(device.firmware) or "—")),
            ("Online", self._value(view, "online", yes_no(device.online) + stale)),
            (
                "Last seen",
                Text(
                    f"{device.last_seen:%Y-%m-%d %H:%M:%S}Z ({age(device.last_seen, now)})"
                    if device.last_seen
                    else "—"
                ),
            ),
            ("Battery", Text(f"{device.battery:g}%" if device.battery is not None else "—")),
            ("Signal", Text(f"{device.rssi:g} dBm" if device.rssi is not None else "—")),
            ("Location", Text(location)),
            ("Group", self._value(view, "group", clean(device.group) or "—")),
            ("Install", self._value(view, "installation_status", status.value if status else "—")),
            ("Alerts", Text(clean(", ".join(device.alerts)) if device.alerts else "none")),
            ("Status", self._value(view, "status", clean(device.status) or "—")),
        ]
        text = Text()
        width = self._text_width()
        console = self.app.console
        for label, value in rows:
            if label == "Alerts" and device.alerts:
                value.stylize("red")
            text.append_text(hanging(label, value, width, console))
        other = [p for p in view.pending if p.field is None]
        for change in other:
            style = "bold red" if change.state in ("failed", "conflict") else "yellow"
            words = Text(f"{clean(change.description, 50)} · {clean(change.words(), 60)}", style=style)
            text.append_text(hanging("Pending", words, width, console))
        self.query_one("#device-facts", Static).update(text)
        title = Text(f" {clean(device.id)}", style="bold")
        if device.name:
            title.append(f"  {clean(device.name, 40)}")
        title.append(f"  · {len(view.sources)} cloud{'s' if len(view.sources) != 1 else ''}", style="dim")
        self.query_one("#device-title", Static).update(title)
        self._render_actions(view)
        self.query_one("#device-errors", Static).update(self._errors_text(view))
        raw = {name: copy.raw for name, copy in view.copies.items()}
        self.query_one("#device-raw", Static).update(
            Text(clean(json.dumps(raw or device.raw, indent=2, default=str), 20_000))
        )

    def _errors_text(self, view: DeviceView) -> Text:
        """Errors of the clouds that hold this device in full, once each; a cloud that could
        not be asked (it may or may not hold it) in one line, so the view says who was missing."""
        holders = {source.backend for source in view.sources}
        text = Text()
        unasked: list[str] = []
        for backend, error in view.errors.items():
            if backend in holders:
                text.append(cloud_error(backend, error) + "\n", style="yellow")
            else:
                unasked.append(clean(backend))
        if unasked:
            text.append(f"Not asked (unreachable): {', '.join(unasked)}", style="dim")
        text.rstrip()
        return text

    def _text_width(self) -> int:
        """The cells a line of the overview has (the terminal's width before the first layout)."""
        return (self.size.width or self.app.size.width) - 2

    def on_resize(self) -> None:
        if self.view is not None and self.is_mounted:
            self._render_view()

    def _clouds(self) -> list[BackendInfo]:
        service = self.app.service
        if service is None or self.view is None:
            return []
        infos = [service.backend(s.backend) for s in self.view.sources]
        return [info for info in infos if info is not None]

    def _why_not(self, capabilities: tuple[str, ...]) -> str | None:
        """None when one of the device's clouds offers one of ``capabilities`` (or none is
        needed), else why not."""
        if not capabilities:
            return None
        reasons = []
        for info in self._clouds():
            for capability in capabilities:
                reason = info.why_not(capability)
                if reason is None:
                    return None
                reasons.append(reason)
        return reasons[0] if reasons else "not offered"

    def _render_actions(self, view: DeviceView) -> None:
        offered, absent = [], []
        for key, (capabilities, label) in DEVICE_ACTIONS.items():
            reason = self._why_not(capabilities)
            if reason is None:
                offered.append(f"[{key}] {label}")
            else:
                absent.append(f"{label}: {reason}")
        width = self._text_width()
        console = self.app.console
        actions = hanging("Actions", Text("  ".join(offered) or "none"), width, console)
        if absent:
            actions.append_text(hanging("Not here", Text("; ".join(absent), style="dim"), width, console))
        if self.app.read_only:
            actions.append("Read-only: changes are refused.", style="yellow")
        actions.rstrip()
        self.query_one("#device-actions", Static).update(actions)
        self.refresh_bindings()

    @work(exclusive=True, group="device-history")
    async def load_history(self) -> None:
        service = self.app.service
        if service is None:
            return
        widget = self.query_one("#device-history", Static)
        try:
            history = await service.history(self.device_id)
        except Exception as exc:  # noqa: BLE001
            widget.update(f"History unavailable: {clean(exc)}")
            return
        text = Text()
        for entry in history.entries:
            text.append_text(history_line(entry))
            text.append("\n")
        if not history.entries:
            text.append("No history on these clouds.\n")
        for backend, error in history.errors.items():
            text.append(cloud_error(backend, error) + "\n", style="yellow")
        widget.update(text)

    # -- actions -------------------------------------------------------------------------
    #: Action -> the capabilities one of the device's clouds must have for its key to show.
    NEEDS = {
        key_action: needs
        for key_action, needs in (
            ("telemetry", ("telemetry",)),
            ("tasks", ("tasks", "commands")),
            ("set_status", ("installation_status",)),
            ("move", ("groups",)),
            ("command", ("commands",)),
        )
    }
    #: Actions that change something: hidden in read-only mode (never a modal that refuses).
    CHANGES = ("set_status", "move", "command")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The footer offers what this device's clouds can do now; "Not here" says why not."""
        if action in self.CHANGES and self.app.read_only:
            return False
        needs = self.NEEDS.get(action)
        if needs is None or self.view is None:
            return True
        return self._why_not(needs) is None

    def _supported(self, *capabilities: str) -> bool:
        if self.view is None:
            self.app.notify("Still loading the device…")
            return False
        reason = self._why_not(capabilities)
        if reason is None:
            return True
        self.app.notify(f"Not on this device: {reason}.", severity="warning")
        return False

    def action_reload(self) -> None:
        self.load()
        diagnostics = self.query_one(DiagnosticsPane)
        if diagnostics.loaded:
            diagnostics.load()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "diagnostics":
            pane = self.query_one(DiagnosticsPane)
            pane.shown()
            pane.table.focus()

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#device-tabs", TabbedContent).active = tab

    def action_telemetry(self) -> None:
        if self._supported("telemetry"):
            from fieldtui.ui.screens.telemetry import TelemetryScreen

            self.app.push_screen(TelemetryScreen(self.device_id))

    def action_tasks(self) -> None:
        if self._supported("tasks", "commands"):
            from fieldtui.ui.screens.device_tasks import DeviceTasksScreen

            self.app.push_screen(DeviceTasksScreen(self.device_id, self.view))

    def action_set_status(self) -> None:
        if self._supported("installation_status") and self.view is not None:
            from fieldtui.ui.screens.status import choose_status

            choose_status(self.app, self.view)

    def action_move(self) -> None:
        if self._supported("groups"):
            self.app.move_devices([self.device_id])

    def action_command(self) -> None:
        if self._supported("commands"):
            from fieldtui.ui.modals.command import CommandModal

            self.app.push_screen(CommandModal(self.device_id, self.view))
