"""Command palette: go to a device by serial from anywhere, every screen, sync now."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from fieldtui.ui.app import FieldApp


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
            ("Guided installation", "Scan, check, group, install, confirm", app.action_install),
            ("Keys", "Help: keys and filters", app.action_help),
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
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
                90 if row.id == text else 60,
                matcher.highlight(label),
                partial(app.open_device, row.id),
                help=f"{row.name} · {','.join(row.clouds)}",
            )
        if index.get(text) is None:
            yield Hit(
                50,
                f"Go to device {text} (ask every cloud)",
                partial(app.open_device, text),
                help="look it up on every configured cloud",
            )
