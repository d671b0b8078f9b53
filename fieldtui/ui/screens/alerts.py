"""What is alerting now across the clouds: things' own alerting list and count, MQTT maintenance
and firmware waiting, mysensor error states. Enter opens the device; r asks again."""

from __future__ import annotations

from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Static

from fieldtui.core.errors import FieldtuiError
from fieldtui.service.api import AlertingDevice, AlertsView
from fieldtui.ui.app import FieldApp
from fieldtui.ui.text import clean
from fieldtui.ui.waiting import CONNECTING
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.widgets.table import Cell, Column, ProjectTable


def _online(device: AlertingDevice) -> Cell:
    if device.online is None:
        return "—"
    return Text("online", style="green") if device.online else Text("offline", style="grey50")


def _alerts(device: AlertingDevice) -> Cell:
    if not device.alerts:
        return Text("alerting (types not read)", style="dim")
    return Text(clean(", ".join(device.alerts), 200), style="bold red", no_wrap=True)


ALERT_COLUMNS: tuple[Column[AlertingDevice], ...] = (
    Column("backend", "Cloud", 10, lambda d: clean(d.backend, 10)),
    Column("device", "Device", 22, lambda d: clean(d.device, 40)),
    Column("online", "Online", 8, _online),
    Column("alerts", "Alerts", None, _alerts),
)


def alert_key(device: AlertingDevice) -> str:
    return f"{device.backend}\x1f{device.device}"


def summary_text(view: AlertsView) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{len(view.devices)} alerting", style="bold red" if view.devices else "green")
    for name, count in view.counts.items():
        text.append(f" · {clean(name)} counts {count}", style="dim")
    for name, checked in view.checked.items():
        text.append(f" · {clean(name)}: {checked} known devices checked", style="dim")
    return text


class AlertsScreen(Screen[None]):
    """Devices alerting now, per cloud; Enter opens the device, r reads again."""

    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("enter", "open_device", "Open device", id="alerts_open"),
        Binding("r", "refresh", "Refresh", id="alerts_refresh"),
        Binding("escape", "back", "Back", id="alerts_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.view: AlertsView | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Alerting now", style="bold"), id="alerts-title")
        yield Static("Asking each cloud…", id="alerts-summary", classes="summary")
        yield ProjectTable(ALERT_COLUMNS, alert_key, id="alerts-table")
        yield Static("", id="alerts-errors", classes="inline-message")
        yield FieldFooter()

    @property
    def table(self) -> ProjectTable[AlertingDevice]:
        table: ProjectTable[AlertingDevice] = self.query_one("#alerts-table", ProjectTable)
        return table

    def on_mount(self) -> None:
        self.app.update_bar()
        self.table.focus()
        self.action_refresh()

    def service_arrived(self) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        if self.app.service is None:
            self.query_one("#alerts-summary", Static).update(CONNECTING)
            return
        self.query_one("#alerts-summary", Static).update("Asking each cloud…")
        self.run_worker(self._read(), group="alerts", exclusive=True)

    async def _read(self) -> None:
        service = self.app.service
        if service is None:
            return
        try:
            view = await service.alerts()
        except Exception as exc:  # noqa: BLE001 - said on screen, never a traceback
            words = exc.message if isinstance(exc, FieldtuiError) else str(exc)
            self.query_one("#alerts-summary", Static).update(f"Could not read the alerts: {clean(words)}")
            return
        self.view = view
        self.table.fill(view.devices)
        self.query_one("#alerts-summary", Static).update(summary_text(view))
        self.query_one("#alerts-errors", Static).update(
            "\n".join(f"{clean(name)}: {clean(why)}" for name, why in view.errors.items())
        )

    @on(ProjectTable.RowSelected, "#alerts-table")
    def _row_selected(self) -> None:
        self.action_open_device()

    def action_open_device(self) -> None:
        device = self.table.selected()
        if device is not None:
            self.app.open_device(device.device)

    def action_back(self) -> None:
        self.app.pop_screen()
