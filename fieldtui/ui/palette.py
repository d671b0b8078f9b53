"""Command palette: go to a device by serial from anywhere, every screen, sync now."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from fieldtui.ui.app import FieldApp


#: Scores: every command above every device hit; an exact serial above other devices.
COMMAND_RANK = 10.0
EXACT_DEVICE_RANK = 0.9
DEVICE_RANK = 0.6
ASK_RANK = 0.5


class FieldCommands(Provider):
    @property
    def field_app(self) -> FieldApp:
        from fieldtui.ui.app import FieldApp

        app = self.app
        assert isinstance(app, FieldApp)
        return app

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.field_app
        return [
            ("Lookup", "Find a device by serial, tuid or name", app.action_lookup),
            ("Outbox", "Queued, failed and conflicting changes", app.action_outbox),
            ("Sync now", "Send every queued change that can be sent", app.action_sync_now),
            ("Groups", "Groups and their members", app.action_groups),
            ("Fleet tasks", "Each cloud's task queue", app.action_fleet_tasks),
            ("Alerts", "What is alerting now across the clouds", app.action_alerts),
            ("Guided installation", "Scan, check, group, install, confirm", app.action_install),
            ("Help", "Keys of this screen, then every key and filter", app.action_help),
            ("Command line", ":outbox :groups :device SERIAL :q", app.action_command_line),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                # A command named by the words typed outranks any device whose name holds them
                # ("Outbox" + Enter opens the outbox, not a device called "Outbox room").
                yield Hit(COMMAND_RANK + score, matcher.highlight(name), callback, help=help_text)
        text = query.strip()
        if not text:
            return
        app = self.field_app
        index = app.index
        from fieldtui.ui.index import parse_query

        rows, _ = index.search(parse_query(text), 8)
        for row in rows:
            label = f"Go to device {row.id}"
            yield Hit(
                EXACT_DEVICE_RANK if row.id == text else DEVICE_RANK,
                matcher.highlight(label),
                partial(app.go_to_device, row.id),
                help=f"{row.name} · {','.join(row.clouds)}",
            )
        if index.get(text) is None:
            yield Hit(
                ASK_RANK,
                f"Go to device {text} (ask every cloud)",
                partial(app.go_to_device, text),
                help="look it up on every configured cloud",
            )
