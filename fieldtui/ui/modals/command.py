"""Send one command to a device: the commands its cloud declares are offered (a typed name is
still taken), parameters as ``key=value`` pairs or a JSON object; queued in the outbox."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Select, Static

from fieldtui.service.api import ActionRecord, BackendInfo, CommandKind, DeviceView
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import device_clouds
from fieldtui.ui.text import clean
from fieldtui.ui.writes import report

#: Where a sent command can be followed, said in the hint (where the modal was opened from).
FOLLOW_IN_TASKS = "follow it under Commands in the device's Tasks (k)"
FOLLOW_HERE = "follow it in the Commands list"


def parse_parameters(text: str) -> dict[str, Any]:
    """Command parameters as typed: a JSON object, or ``key=value`` pairs (values read as JSON
    when they parse: ``retries=3`` is a number, ``mode=eco`` a string). Raises ValueError."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith(("{", "[")):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
        if not isinstance(value, dict):
            raise ValueError("parameters must be a JSON object")
        return value
    params: dict[str, Any] = {}
    for pair in text.split():
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"“{pair}” is not key=value")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def offered_text(kinds: tuple[CommandKind, ...]) -> str:
    """``Takes: reboot, update_firmware (url, version) · or type another name``."""
    if not kinds:
        return "Type the command's name."
    names = [k.name + (f" ({', '.join(k.parameters)})" if k.parameters else "") for k in kinds]
    return "Takes: " + ", ".join(clean(n, 40) for n in names) + " · or type another name"


class CommandModal(ModalScreen[ActionRecord | None]):
    """Send one command (name + parameters) through the outbox; dismisses with the queued record."""

    app = getters.app(FieldApp)

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="command_cancel")]

    def __init__(
        self, device_id: str, view: DeviceView | None = None, *, follow: str = FOLLOW_IN_TASKS
    ) -> None:
        super().__init__()
        self.device_id = device_id
        self.view = view
        self.follow = follow

    def _clouds(self) -> list[BackendInfo]:
        service = self.app.service
        return device_clouds(service, self.view, "commands") if service is not None else []

    def _chosen(self) -> BackendInfo | None:
        value = self.query_one("#command-cloud", Select).value
        return next((c for c in self._clouds() if c.name == value), None)

    def compose(self) -> ComposeResult:
        clouds = self._clouds()
        with Vertical(classes="modal", id="command-modal"):
            yield Static(Text(f"Send a command to {clean(self.device_id)}"), classes="modal-title")
            yield Select[str](
                [(f"{clean(c.name)} ({c.kind.value})", c.name) for c in clouds],
                prompt="Cloud",
                allow_blank=not clouds,
                id="command-cloud",
            )
            yield Static("", id="command-offered", classes="summary")
            yield Input(placeholder="command name, e.g. reboot", id="command-name")
            yield Input(placeholder='parameters: key=value … or {"json": "object"}', id="command-params")
            yield Static(
                f"Queued in the outbox and sent when the cloud is reachable; {self.follow}.",
                id="command-hint",
                classes="inline-message",
            )
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel \\[esc]", id="command-cancel")
                yield Button("Send", id="command-send", variant="primary")

    def on_mount(self) -> None:
        clouds = self._clouds()
        self.query_one("#command-cloud", Select).display = len(clouds) > 1
        self.query_one("#command-name", Input).focus()
        self._offer()
        if not clouds:
            self._hint("None of this device's clouds take commands.", error=True)
            self.query_one("#command-send", Button).disabled = True

    @on(Select.Changed, "#command-cloud")
    def _offer(self) -> None:
        """Offer the chosen cloud's commands: listed, and completed as the name is typed."""
        cloud = self._chosen()
        kinds = cloud.command_kinds if cloud is not None else ()
        self.query_one("#command-offered", Static).update(
            Text(offered_text(kinds), no_wrap=True, overflow="ellipsis")
        )
        name = self.query_one("#command-name", Input)
        name.suggester = SuggestFromList([k.name for k in kinds]) if kinds else None
        if kinds:
            name.placeholder = f"command name, e.g. {kinds[0].name}"

    @on(Input.Changed, "#command-name")
    def _name_changed(self, event: Input.Changed) -> None:
        cloud = self._chosen()
        known = next(
            (k for k in (cloud.command_kinds if cloud else ()) if k.name == event.value.strip()), None
        )
        params = self.query_one("#command-params", Input)
        if known is not None and known.parameters:
            params.placeholder = (
                " ".join(f"{p}=…" for p in known.parameters) + f"  ({clean(known.label, 40)})"
            )
        elif known is not None:
            params.placeholder = f"no parameters needed ({clean(known.label, 40)})"
        else:
            params.placeholder = 'parameters: key=value … or {"json": "object"}'

    def _hint(self, text: str, *, error: bool = False) -> None:
        hint = self.query_one("#command-hint", Static)
        hint.set_class(error, "error-message")
        hint.update(Text(text))

    @on(Input.Submitted, "#command-name")
    def _name_done(self) -> None:
        self.query_one("#command-params", Input).focus()

    @on(Input.Submitted, "#command-params")
    @on(Button.Pressed, "#command-send")
    def _send(self) -> None:
        name = self.query_one("#command-name", Input).value.strip()
        if not name:
            self._hint("Type the command's name first.", error=True)
            self.query_one("#command-name", Input).focus()
            return
        try:
            params = parse_parameters(self.query_one("#command-params", Input).value)
        except ValueError as exc:
            self._hint(f"Parameters: {exc}", error=True)
            self.query_one("#command-params", Input).focus()
            return
        cloud = self._chosen()
        if cloud is None:
            self._hint("No cloud to send it through.", error=True)
            return
        self._submit(cloud.name, name, params)

    @work(exclusive=True, group="command-send")
    async def _submit(self, backend: str, name: str, params: dict[str, Any]) -> None:
        service = self.app.service
        send = self.query_one("#command-send", Button)
        send.disabled = True
        if service is None:
            self._hint("Not connected to the service yet; try again in a moment.", error=True)
            send.disabled = False
            return
        try:
            record = await service.writes.send_command(self.device_id, name, params, backend=backend)
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said inline
            self._hint(f"Not queued: {clean(exc)}", error=True)
            send.disabled = False
            return
        self.app.run_worker(report(self.app, f"{name} → {clean(self.device_id)}", record), group="writes")
        self.dismiss(record)

    @on(Button.Pressed, "#command-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
