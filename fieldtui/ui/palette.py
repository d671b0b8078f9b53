"""Command palette: go to a device by serial from anywhere, every screen, sync now."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class FieldCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        return [
            ("Lookup", "Find a device by serial, tuid or name", app.action_lookup),  # type: ignore[attr-defined]
            ("Outbox", "Queued, failed and conflicting changes", app.action_outbox),  # type: ignore[attr-defined]
            ("Sync now", "Send every queued change that can be sent", app.action_sync_now),  # type: ignore[attr-defined]
            ("Groups", "Groups and their members", app.action_groups),  # type: ignore[attr-defined]
            ("Fleet tasks", "Each cloud's task queue", app.action_fleet_tasks),  # type: ignore[attr-defined]
            ("Guided installation", "Scan, check, group, install, confirm", app.action_install),  # type: ignore[attr-defined]
            ("Keys", "Help: keys and filters", app.action_help),  # type: ignore[attr-defined]
        ]

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)  # type: ignore[arg-type]
        text = query.strip()
        if not text:
            return
        index = self.app.index  # type: ignore[attr-defined]
        from fieldtui.ui.index import parse_query

        rows, _ = index.search(parse_query(text), 8)
        for row in rows:
            label = f"Go to device {row.id}"
            yield Hit(
                90 if row.id == text else 60,
                matcher.highlight(label),
                partial(self.app.open_device, row.id),  # type: ignore[attr-defined]
                help=f"{row.name} · {','.join(row.clouds)}",
            )
        if index.get(text) is None:
            yield Hit(
                50,
                f"Go to device {text} (ask every cloud)",
                partial(self.app.open_device, text),  # type: ignore[attr-defined]
                help="look it up on every configured cloud",
            )
