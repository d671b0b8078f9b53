"""The device screen's Diagnostics tab: what each of the device's clouds holds beyond its record.

A gateway's network usage per interface, LoRa card, last log and config uploads with their
download links, and its apps; an MQTT device's configuration as the cloud holds it, licences,
space info and firmware (``a`` asks the device itself for its configuration); a fleet device's
attributes; a sensor's task queue and current configuration. One line a row, readable at 80x24:
Enter opens a line whole (a long app report, a download link on a line of its own to copy), ``y``
copies its value to the clipboard. Read when the tab is first shown, again on F5.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import getters, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey

from fieldtui.core.errors import Unsupported
from fieldtui.core.outline import outline, title
from fieldtui.service.api import CloudDetails, DiagnosticsView
from fieldtui.ui.app import FieldApp
from fieldtui.ui.screens.presence import screen_gone
from fieldtui.ui.text import clean, cloud_error
from fieldtui.ui.widgets.table import Column, ProjectTable

HINT = "Enter: a line whole · y: copy · a: ask the device its config · F5: again"


@dataclass(frozen=True, slots=True)
class DiagnosticsLine:
    """One row: its place (for a stable cursor), its indent, its words and what it is."""

    key: str
    depth: int
    text: str
    #: ``cloud``, ``section``, ``line`` or ``problem``.
    kind: str = "line"

    def cell(self, width: int) -> Text:
        """The line cut to ``width`` cells with an ellipsis (Enter shows it whole)."""
        style = {"cloud": "bold", "section": "bold cyan", "problem": "yellow"}.get(self.kind, "")
        text = Text("  " * self.depth + self.text, style=style, no_wrap=True)
        text.truncate(max(8, width), overflow="ellipsis")
        return text

    def value(self) -> str:
        """What ``y`` copies: the value of a ``key: value`` line, else the whole line."""
        key, sep, rest = self.text.partition(": ")
        return rest if sep and rest and " " not in key else self.text


def diagnostics_lines(view: DiagnosticsView, asked: dict[str, CloudDetails | str]) -> list[DiagnosticsLine]:
    """Every cloud's sections as rows, then the clouds that failed or keep nothing more."""
    rows: list[DiagnosticsLine] = []
    for details in view.details:
        rows.append(DiagnosticsLine(f"{details.backend}", 0, clean(details.backend), "cloud"))
        sections = dict(details.sections)
        answer = asked.get(details.backend)
        if isinstance(answer, CloudDetails):
            sections["device_config"] = answer.sections.get("config")
        for name, value in sections.items():
            rows.append(DiagnosticsLine(f"{details.backend}/{name}", 1, title(name), "section"))
            for n, line in enumerate(outline(value)):
                rows.append(DiagnosticsLine(f"{details.backend}/{name}/{n}", 2 + line.depth, line.text))
        if isinstance(answer, str):
            words = f"The device did not give its configuration: {clean(answer, 2000)}"
            rows.append(DiagnosticsLine(f"{details.backend}/asked", 1, words, "problem"))
    for backend, why in view.errors.items():
        rows.append(DiagnosticsLine(f"error/{backend}", 0, cloud_error(backend, why, 2000), "problem"))
    for backend, why in view.skipped.items():
        rows.append(DiagnosticsLine(f"skipped/{backend}", 0, cloud_error(backend, why, 2000)))
    return rows


class DiagnosticsPane(Vertical):
    """The tab's content; :meth:`load` reads (again), :meth:`shown` reads the first time only."""

    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("y", "copy_line", "Copy", id="diagnostics_copy"),
        Binding("a", "ask_device", "Ask config", id="diagnostics_ask"),
    ]

    def __init__(self, device_id: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.device_id = device_id
        self.view: DiagnosticsView | None = None
        self.asked: dict[str, CloudDetails | str] = {}
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Static(
            "Open this tab to read the device's diagnostics.", id="diagnostics-status", classes="summary"
        )
        yield ProjectTable[DiagnosticsLine](
            [Column("line", "Diagnostics", self._width(), lambda line: line.cell(self._width()))],
            key=lambda line: line.key,
            id="diagnostics-table",
            zebra_stripes=False,
        )

    def on_mount(self) -> None:
        self.table.show_header = False

    def _width(self) -> int:
        """The cells a row has: the terminal's width (the pane spans it) less the scrollbar and
        the cell padding. Not the pane's own size, which is still settling while the tab opens."""
        return self.app.size.width - 4

    def on_resize(self) -> None:
        column = self.table.columns.get(ColumnKey("line"))
        if column is not None and column.width != self._width():
            # One column of a fixed width (measuring rows as they come is not steady).
            column.width = self._width()
            self.table.refresh()
            if self.view is not None:
                self._show()

    @property
    def table(self) -> ProjectTable[DiagnosticsLine]:
        return self.query_one("#diagnostics-table", ProjectTable)

    def _status(self, words: str | Text) -> None:
        self.query_one("#diagnostics-status", Static).update(words)

    def shown(self) -> None:
        if not self.loaded:
            self.load()

    @work(exclusive=True, group="diagnostics")
    async def load(self) -> None:
        service = self.app.service
        if service is None:
            self._status("Still connecting to the clouds… press F5 to retry.")
            return
        self.loaded = True
        self._status("Reading the diagnostics of every cloud that holds the device…")
        try:
            view = await service.diagnostics(self.device_id)
        except Exception as exc:  # noqa: BLE001 - shown inline, the app keeps running
            if screen_gone(self):
                return
            self._status(Text(f"Diagnostics unavailable: {clean(exc)}", style="bold red"))
            return
        self.view = view
        if not screen_gone(self):
            self._show()

    def _show(self) -> None:
        view = self.view
        if view is None:
            return
        self.table.fill(diagnostics_lines(view, self.asked))
        if view.details:
            self._status(HINT)
        else:
            self._status(Text("No cloud of this device has diagnostics to show now.", style="yellow"))

    def action_ask_device(self) -> None:
        if self.view is None or not self.view.details:
            self.app.notify("Still reading the diagnostics…" if self.view is None else "No cloud to ask.")
            return
        self.ask_device([d.backend for d in self.view.details])

    @work(exclusive=True, group="diagnostics-ask")
    async def ask_device(self, clouds: list[str]) -> None:
        """Every cloud that can ask a device (MQTT's ``.../config``) asks it; the others say they
        cannot, which is not news: only when none can is the technician told."""
        service = self.app.service
        if service is None:
            return
        self._status("Asking the device for its configuration…")
        able = 0
        for backend in clouds:
            try:
                self.asked[backend] = await service.request_config(self.device_id, backend)
            except Unsupported:
                continue
            except Exception as exc:  # noqa: BLE001 - shown as the cloud's row
                self.asked[backend] = clean(getattr(exc, "reason", exc), 2000)
            able += 1
        if screen_gone(self):
            return
        self._show()
        if not able:
            self.app.notify(
                "None of this device's clouds can ask it for its configuration.", severity="warning"
            )

    def _selected(self) -> DiagnosticsLine | None:
        key = self.table.selected_key()
        return next((line for line in self.table.objects if line.key == key), None)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        line = self._selected()
        if line is None:
            return
        from fieldtui.ui.modals.message_view import MessageViewModal

        value = line.value()
        whole = [line.text] if value == line.text else [line.text[: -len(value)].rstrip(), value]
        parts = line.key.split("/")
        if line.text.startswith("download: ") and len(parts) > 1:
            # A download link may need the cloud's session (a browser may be refused).
            whole += [
                "",
                "If the link is refused, save the file with fieldtui's session:",
                f"fieldtui diagnostics {clean(self.device_id)} --download {clean(parts[1])}",
            ]
        self.app.push_screen(MessageViewModal(f"{clean(self.device_id)} · diagnostics", whole))

    def action_copy_line(self) -> None:
        line = self._selected()
        if line is None:
            return
        self.app.copy_to_clipboard(line.value())
        self.app.notify(f"Copied: {clean(line.value(), 60)}")


__all__ = ["DiagnosticsLine", "DiagnosticsPane", "diagnostics_lines"]
