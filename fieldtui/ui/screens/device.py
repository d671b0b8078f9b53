"""One device across its clouds: facts, then telemetry, tasks, history and the raw payloads.

Only actions the device's clouds support are offered; the others are listed with the reason.
"""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static, TabbedContent, TabPane

from fieldtui.ui.text import age, clean, yes_no
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar

#: action key -> (capability, label)
DEVICE_ACTIONS: dict[str, tuple[str, str]] = {
    "t": ("telemetry", "telemetry"),
    "k": ("tasks", "tasks"),
    "s": ("installation_status", "status"),
    "m": ("groups", "move"),
    "x": ("commands", "command"),
}


def capability_of(service: Any, backend: str, capability: str) -> tuple[bool, str | None]:
    connectors = getattr(service, "connectors", {}) or {}
    connector = connectors.get(backend)
    if connector is None:
        return False, f"{backend} is not configured"
    caps = connector.capabilities
    reason = caps.why_not(capability, connector.kind.value)
    return reason is None, reason


class DeviceScreen(Screen[None]):
    BINDINGS = [
        Binding("t", "telemetry", "Telemetry", id="device_telemetry"),
        Binding("k", "tasks", "Tasks", id="device_tasks"),
        Binding("s", "set_status", "Status", id="device_status"),
        Binding("m", "move", "Move", id="device_move"),
        Binding("x", "command", "Command", show=False, id="device_command"),
        Binding("h", "show_tab('history')", "History", show=False, id="device_history"),
        Binding("r", "show_tab('raw')", "Raw", show=False, id="device_raw"),
        Binding("f5", "reload", "Reload", id="device_reload"),
    ]

    def __init__(self, device_id: str) -> None:
        super().__init__()
        self.device_id = device_id
        self.view: Any = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(f" {clean(self.device_id)}", style="bold"), id="device-title")
        with TabbedContent(initial="overview", id="device-tabs"):
            with TabPane("Overview", id="overview"), VerticalScroll():
                yield Static("Looking the device up on every cloud…", id="device-facts", classes="facts")
                yield Static("", id="device-actions", classes="facts")
                yield Static("", id="device-errors", classes="inline-message")
            with TabPane("History", id="history"), VerticalScroll():
                yield Static("", id="device-history", classes="facts")
            with TabPane("Raw", id="raw"), VerticalScroll():
                yield Static("", id="device-raw", classes="facts")
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()  # type: ignore[attr-defined]
        self.load()

    # -- loading -------------------------------------------------------------------------
    @work(exclusive=True, group="device-load")
    async def load(self) -> None:
        service = self.app.service  # type: ignore[attr-defined]
        if service is None:
            self.query_one("#device-facts", Static).update(
                "Still connecting to the clouds… press F5 to retry."
            )
            return
        try:
            view = await service.device(self.device_id)
        except Exception as exc:  # noqa: BLE001 - shown inline, the app keeps running
            self.query_one("#device-facts", Static).update(
                Text(f"{clean(exc)}\n\nCheck the serial, or press F5 to try again.", style="bold red")
            )
            return
        self.view = view
        self.app.absorb_find_update(view)  # type: ignore[attr-defined]
        self._render_view()
        self.load_history()

    def _render_view(self) -> None:
        view = self.view
        device = view.device
        now = ui_now()
        stale = " (cached)" if getattr(view, "stale", False) else ""
        sources = ", ".join(
            f"{clean(s.backend)}[{clean(s.kind.value if hasattr(s.kind, 'value') else s.kind)}]"
            + (f" cached {age(s.fetched_at, now)}" if s.stale else "")
            for s in view.sources
        )
        location = f"{device.location.lat:.5f}, {device.location.lon:.5f}" if device.location else "—"
        status = device.installation_status
        rows = [
            ("Clouds", sources or clean(device.backend)),
            ("Name", clean(device.name) or "—"),
            ("Model", clean(device.model) or "—"),
            ("Firmware", clean(device.firmware) or "—"),
            ("Online", yes_no(device.online) + stale),
            (
                "Last seen",
                f"{device.last_seen:%Y-%m-%d %H:%M:%S}Z ({age(device.last_seen, now)})"
                if device.last_seen
                else "—",
            ),
            ("Battery", f"{device.battery:g}%" if device.battery is not None else "—"),
            ("Signal", f"{device.rssi:g} dBm" if device.rssi is not None else "—"),
            ("Location", location),
            ("Group", clean(device.group) or "—"),
            ("Install", clean(getattr(status, "value", status)) or "—"),
            ("Alerts", clean(", ".join(device.alerts)) if device.alerts else "none"),
            ("Status", clean(device.status) or "—"),
        ]
        text = Text()
        for label, value in rows:
            text.append(f"{label:<10}", style="bold")
            text.append(f"{value}\n", style="red" if label == "Alerts" and device.alerts else "")
        self.query_one("#device-facts", Static).update(text)
        self.query_one("#device-title", Static).update(
            Text(f" {clean(device.id)}  {clean(device.name or '')}", style="bold")
        )

        offered, absent = [], []
        for key, (capability, label) in DEVICE_ACTIONS.items():
            reasons = []
            ok = False
            for source in view.sources:
                supported, reason = capability_of(self.app.service, source.backend, capability)  # type: ignore[attr-defined]
                ok = ok or supported
                if reason:
                    reasons.append(reason)
            if ok:
                offered.append(f"[{key}] {label}")
            else:
                absent.append(f"{label}: {reasons[0] if reasons else 'not offered'}")
        actions = Text()
        actions.append("Actions  ", style="bold")
        actions.append("  ".join(offered) or "none")
        if absent:
            actions.append("\nNot here ", style="bold dim")
            actions.append("; ".join(absent), style="dim")
        if getattr(self.app, "read_only", False):
            actions.append("\nRead-only: changes are refused.", style="yellow")
        self.query_one("#device-actions", Static).update(actions)
        errors = getattr(view, "errors", {}) or {}
        self.query_one("#device-errors", Static).update(
            "\n".join(f"{clean(b)}: {clean(e)}" for b, e in errors.items())
        )
        raw = {name: copy.raw for name, copy in (getattr(view, "copies", {}) or {}).items()}
        self.query_one("#device-raw", Static).update(
            Text(clean(json.dumps(raw or device.raw, indent=2, default=str), 20_000))
        )

    @work(exclusive=True, group="device-history")
    async def load_history(self) -> None:
        service = self.app.service  # type: ignore[attr-defined]
        history_fn = getattr(service, "history", None)
        if history_fn is None:
            return
        try:
            lines = await history_fn(self.device_id)
        except Exception as exc:  # noqa: BLE001
            self.query_one("#device-history", Static).update(f"History unavailable: {clean(exc)}")
            return
        self.query_one("#device-history", Static).update(
            Text("\n".join(clean(line) for line in lines) or "No history on these clouds.")
        )

    # -- actions -------------------------------------------------------------------------
    def _supported(self, capability: str) -> bool:
        if self.view is None:
            self.app.notify("Still loading the device…")
            return False
        for source in self.view.sources:
            if capability_of(self.app.service, source.backend, capability)[0]:  # type: ignore[attr-defined]
                return True
        self.app.notify(
            f"None of this device's clouds offer {capability.replace('_', ' ')}.", severity="warning"
        )
        return False

    def action_reload(self) -> None:
        self.load()

    def action_show_tab(self, tab: str) -> None:
        self.query_one("#device-tabs", TabbedContent).active = tab

    def action_telemetry(self) -> None:
        if self._supported("telemetry"):
            from fieldtui.ui.screens.telemetry import TelemetryScreen

            self.app.push_screen(TelemetryScreen(self.device_id))

    def action_tasks(self) -> None:
        if self._supported("tasks"):
            from fieldtui.ui.screens.tasks import DeviceTasksScreen

            self.app.push_screen(DeviceTasksScreen(self.device_id, self.view))

    def action_set_status(self) -> None:
        if self._supported("installation_status"):
            from fieldtui.ui.screens.status import choose_status

            choose_status(self.app, self.view)

    def action_move(self) -> None:
        if self._supported("groups"):
            self.app.move_devices([self.device_id])  # type: ignore[attr-defined]

    def action_command(self) -> None:
        if self._supported("commands"):
            from fieldtui.ui.screens.tasks import CommandModal

            self.app.push_screen(CommandModal(self.device_id, self.view))
