"""The confirmation before a device record is created, registered or deleted: it names the
cloud (its name and kind), the device, and what the cloud will do."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.markup import escape

from fieldtui.ui.text import clean
from fieldtui.ui.widgets.confirm import ConfirmModal

#: verb -> (title word, what the cloud does).
_WORDS = {
    "create": ("Create", "The cloud adds a new device record."),
    "register": ("Register", "The cloud associates the gateway with this account."),
    "delete": ("Delete", "The cloud removes the device and all its records there."),
}


@dataclass(frozen=True, slots=True)
class RecordChange:
    """A device record change the technician asked for on the ``:`` line."""

    verb: str  # create | register | delete
    device: str
    cloud: str
    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def what(self) -> str:
        """``Delete 19023480 from gateways`` (the notification's words)."""
        word = _WORDS[self.verb][0]
        where = "from" if self.verb == "delete" else "on"
        return f"{word} {clean(self.device)} {where} {clean(self.cloud)}"


class DeviceRecordModal(ConfirmModal):
    """Yes/no (``y``/``n``/Escape; No has the focus) for one :class:`RecordChange`."""

    def __init__(self, change: RecordChange) -> None:
        word, effect = _WORDS[change.verb]
        lines = [
            f"Cloud   {escape(clean(change.cloud))} ({escape(change.kind)})",
            f"Device  {escape(clean(change.device))}",
        ]
        lines += [f"{escape(clean(key))}  {escape(clean(value))}" for key, value in change.fields.items()]
        lines += ["", effect]
        super().__init__(
            f"{word} device {escape(clean(change.device))}?", "\n".join(lines), yes=word, no="Cancel"
        )
        self.change = change
