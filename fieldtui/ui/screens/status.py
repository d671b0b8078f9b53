"""Installation status: the five statuses, the current one marked, confirmation for the weighty ones.

The change goes to the outbox; the technician sees it queued, then synced, failed or in conflict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from fieldtui.service.api import DeviceView
from fieldtui.ui.text import clean
from fieldtui.ui.widgets.confirm import ConfirmModal

STATUSES = (
    ("new", "New thing from the factory"),
    ("installed", "Installed; warranty period applies"),
    ("uninstalled", "Uninstalled; waits for a possible reinstallation"),
    ("quarantine", "Waiting for maintenance"),
    ("retired", "Removed from the system (e.g. broken)"),
)
NEEDS_CONFIRMATION = {"quarantine", "retired"}

if TYPE_CHECKING:
    from fieldtui.ui.app import FieldApp


class StatusModal(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="status_cancel")]

    def __init__(self, device_id: str, current: str | None) -> None:
        super().__init__()
        self.device_id = device_id
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal"):
            yield Static(f"Installation status of {clean(self.device_id)}", classes="modal-title")
            options = []
            for index, (status, meaning) in enumerate(STATUSES, start=1):
                mark = "●" if status == self.current else " "
                # Two columns: a meaning that wraps stays under itself, not under the number.
                prompt = Table.grid()
                prompt.add_column(width=17, no_wrap=True)
                prompt.add_column(ratio=1)
                prompt.add_row(f"{mark} {index} {status:<12} ", meaning)
                options.append(Option(prompt, id=status))
            yield OptionList(*options, id="status-options")
            yield Static("Enter chooses · 1-5 jump · Escape cancels", classes="summary")

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        option_list.focus()
        ids = [s for s, _ in STATUSES]
        if self.current in ids:
            option_list.highlighted = ids.index(self.current)

    def on_key(self, event: events.Key) -> None:
        if event.character and event.character in "12345":
            self.query_one(OptionList).highlighted = int(event.character) - 1
            event.stop()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        chosen = event.option.id
        if chosen == self.current:
            # The title may name several devices at once ("3 devices", from a group's members).
            verb = "are" if self.device_id.endswith(" devices") else "is"
            self.app.notify(f"{clean(self.device_id)} {verb} already {chosen}.")
            self.dismiss(None)
            return
        if chosen in NEEDS_CONFIRMATION:

            def confirmed(answer: bool | None) -> None:
                if answer:
                    self.dismiss(chosen)

            self.app.push_screen(
                ConfirmModal(
                    f"Mark {clean(self.device_id)} {chosen}?",
                    dict(STATUSES)[chosen or ""] + ". This is recorded in the device's history.",
                    yes=f"Mark {chosen}",
                ),
                confirmed,
            )
            return
        self.dismiss(chosen)

    def action_cancel(self) -> None:
        self.dismiss(None)


def choose_status(app: FieldApp, view: DeviceView) -> None:
    device = view.device
    current = device.installation_status.value if device.installation_status else None
    if app.read_only:
        app.notify("Read-only: installation status cannot be changed.", severity="warning")
        return

    def chosen(status: str | None) -> None:
        if status:
            submit_status(app, view, status)

    app.push_screen(StatusModal(device.id, current), chosen)


async def _submit(app: FieldApp, view: DeviceView, status: str) -> None:
    service = app.service
    if service is None:
        app.notify("Not connected to the service yet; try again in a moment.", severity="warning")
        return
    device = view.device
    backend = backend_for(app, view, "installation_status")
    current = device.installation_status
    precondition = {"installation_status": current.value if current else None}
    what = f"{clean(device.id)} → {status}"
    try:
        record = await service.writes.set_installation_status(
            device.id, status, backend=backend, precondition=precondition
        )
    except Exception as exc:  # noqa: BLE001 - refused before queuing (read-only, bad input)
        app.notify(f"Not queued: {clean(exc)}", severity="error")
        return
    app.track_write(record, what)
    app.notify(f"{what}: queued")
    await app.refresh_outbox_counts()


def submit_status(app: FieldApp, view: DeviceView, status: str) -> None:
    app.run_worker(_submit(app, view, status), group="writes")


def backend_for(app: FieldApp, view: DeviceView, capability: str) -> str | None:
    """The first of the device's clouds that offers ``capability`` (None: resolved at sync)."""
    service = app.service
    if service is None:
        return None
    for source in view.sources:
        info = service.backend(source.backend)
        if info is not None and info.why_not(capability) is None:
            return source.backend
    return None
