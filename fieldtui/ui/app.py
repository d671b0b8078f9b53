"""The Textual app: screens over FleetService. No network code here; service work runs in workers."""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from fieldtui.ui.index import DeviceIndex, DeviceRow
from fieldtui.ui.palette import FieldCommands
from fieldtui.ui.widgets.status_bar import BarState, StatusBar

ServiceFactory = Callable[[], Awaitable[Any]]
#: The preload hands the event loop back (keys, redraws) after this many devices.
PRELOAD_YIELD = 500


def _stylesheet() -> str:
    return str(resources.files("fieldtui.styles").joinpath("app.tcss"))


class FieldApp(App[int]):
    CSS_PATH = _stylesheet()
    TITLE = "fieldtui"
    COMMANDS = App.COMMANDS | {FieldCommands}
    # Each app-wide key has a Ctrl/F-key form that works while the lookup box has focus (a
    # printable key there is typed into the box); the bare letter works everywhere else.
    BINDINGS = [
        Binding("f1,question_mark", "help", "Help", key_display="F1/?", id="help"),
        Binding("ctrl+s", "sync_now", "Sync", id="sync_now"),
        Binding("ctrl+o,o", "outbox", "Outbox", key_display="^O", id="outbox"),
        Binding("ctrl+g,g", "groups", "Groups", key_display="^G", id="groups"),
        Binding("ctrl+n,i", "install", "Install", key_display="^N", id="install"),
        Binding("ctrl+t", "fleet_tasks", "Fleet tasks", show=False, id="fleet_tasks"),
        Binding("escape", "back", "Back", show=False, id="back"),
        Binding("ctrl+q,q", "quit", "Quit", key_display="^Q", id="quit"),
    ]

    def __init__(
        self,
        service_factory: ServiceFactory,
        *,
        profile: str,
        read_only: bool = False,
        offline: bool = False,
        keymap: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.animation_level = "none"  # animation costs bandwidth over SSH
        self._service_factory = service_factory
        self.service: Any = None
        self.index = DeviceIndex()
        self.bar = BarState(profile=profile, read_only=read_only, offline_mode=offline)
        self.read_only = read_only
        self.offline = offline
        # Applied by each screen's binding chain; set before the first screen is composed, so
        # the footer shows the remapped keys from the first frame.
        self._keymap = self._normalize_keymap(keymap or {})
        self.service_error: str | None = None

    # -- start-up ------------------------------------------------------------------------
    def get_default_screen(self) -> Screen[Any]:
        """The lookup screen is the bottom of the stack (no blank screen composed under it)."""
        from fieldtui.ui.screens.lookup import LookupScreen

        return LookupScreen()

    def on_mount(self) -> None:
        # The first frame is the lookup screen alone: the service (httpx, pydantic, SQLite,
        # the read cache) is built once it is on the terminal.
        self.call_after_refresh(self._start_service)

    @work(exclusive=True, group="service-start")
    async def _start_service(self) -> None:
        try:
            self.service = await self._service_factory()
        except Exception as exc:  # noqa: BLE001 - shown to the user, app keeps running
            self.service_error = str(exc)
            self.notify(f"Cannot start: {exc}", severity="error", timeout=15)
            return
        await self.on_service_ready()

    async def on_service_ready(self) -> None:
        """Hook the service's events to the bar and preload the index from the cache."""
        service = self.service
        connectivity = getattr(service, "connectivity", None)
        if connectivity is not None:
            for name, status in connectivity.snapshot().items():
                self.bar.backends[name] = str(getattr(status.state, "value", status.state))
            connectivity.on_change(lambda change: self.call_later(self._backend_changed, change))
        writes = getattr(service, "writes", None)
        if writes is not None and hasattr(writes, "on_change"):
            writes.on_change(lambda *_: self.call_later(self.refresh_outbox_counts))
        await self.refresh_outbox_counts()
        preload = getattr(service, "known_devices", None)
        if preload is not None:
            try:
                await self._preload(preload())
            except Exception as exc:  # noqa: BLE001
                self.notify(f"Cache unavailable: {exc}", severity="warning")
        self.update_bar()
        self._refresh_lookup()

    async def _preload(self, views: Any) -> None:
        """Fold the cached devices into the index, letting keys through every few hundred."""
        if inspect.isawaitable(views):
            views = await views
        if not hasattr(views, "__aiter__"):
            for view in views:
                self.absorb_find_update(view)
            return
        absorbed = 0
        async for view in views:
            self.absorb_find_update(view)
            absorbed += 1
            if absorbed % PRELOAD_YIELD == 0:
                await asyncio.sleep(0)

    def _backend_changed(self, change: Any) -> None:
        self.bar.backends[change.backend] = str(getattr(change.new, "value", change.new))
        self.update_bar()

    async def refresh_outbox_counts(self) -> None:
        writes = getattr(self.service, "writes", None)
        counts = getattr(writes, "counts", None)
        if counts is None:
            return
        try:
            value = await counts()
        except Exception:  # noqa: BLE001 - the bar keeps its last counts
            return
        self.bar.pending = int(value.get("queued", 0)) + int(value.get("sending", 0))
        self.bar.failed = int(value.get("failed", 0))
        self.bar.conflicts = int(value.get("conflict", 0))
        last = value.get("last_sync")
        if isinstance(last, datetime):
            self.bar.last_sync = last
        self.update_bar()

    def update_bar(self) -> None:
        for bar in self.screen.query(StatusBar):
            bar.state = self.bar

    def _refresh_lookup(self) -> None:
        from fieldtui.ui.screens.lookup import LookupScreen

        for screen in self.screen_stack:
            # The service can be ready before the lookup screen has composed its widgets.
            if isinstance(screen, LookupScreen) and screen.is_mounted:
                screen.refresh_results()

    # -- the index -----------------------------------------------------------------------
    @staticmethod
    def find_update_id(update: Any) -> str | None:
        update = getattr(update, "view", update)  # FleetService.find yields FindMatch(view=...)
        device = getattr(update, "device", None)
        return getattr(device, "id", None)

    def absorb_find_update(self, update: Any) -> None:
        """Fold a merged device (DeviceView-like: ``.device`` and ``.sources``) into the index."""
        update = getattr(update, "view", update)  # FleetService.find yields FindMatch(view=...)
        device = getattr(update, "device", None)
        if device is None:
            return
        sources = getattr(update, "sources", ())
        clouds = tuple(dict.fromkeys(getattr(s, "backend", "") for s in sources)) or (device.backend,)
        fetched = [getattr(s, "fetched_at", None) for s in sources]
        status = device.installation_status
        self.index.upsert(
            DeviceRow(
                id=device.id,
                name=device.name or "",
                clouds=clouds,
                group=device.group or "",
                installation_status=str(getattr(status, "value", status or "")),
                online=device.online,
                alerting=bool(device.alerts),
                last_seen=device.last_seen,
                fetched_at=max((f for f in fetched if f is not None), default=None),
                stale=bool(sources) and all(getattr(s, "stale", False) for s in sources),
            )
        )

    # -- navigation ----------------------------------------------------------------------
    def open_device(self, device_id: str) -> None:
        from fieldtui.ui.screens.device import DeviceScreen

        self.push_screen(DeviceScreen(device_id))

    def move_devices(self, device_ids: list[str]) -> None:
        from fieldtui.ui.screens.groups import move_devices

        move_devices(self, device_ids)

    def action_back(self) -> None:
        if len(self.screen_stack) > 1:  # the lookup screen is the bottom of the stack
            self.pop_screen()

    def action_lookup(self) -> None:
        from fieldtui.ui.screens.lookup import LookupScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, LookupScreen):
            self.pop_screen()

    def action_help(self) -> None:
        from fieldtui.ui.screens.help import HelpScreen

        self.push_screen(HelpScreen())

    def action_outbox(self) -> None:
        from fieldtui.ui.screens.outbox import OutboxScreen

        self.push_screen(OutboxScreen())

    def action_groups(self) -> None:
        from fieldtui.ui.screens.groups import GroupsScreen

        self.push_screen(GroupsScreen())

    def action_fleet_tasks(self) -> None:
        from fieldtui.ui.screens.tasks import FleetTasksScreen

        self.push_screen(FleetTasksScreen())

    def action_install(self) -> None:
        from fieldtui.ui.screens.install import InstallScreen

        self.push_screen(InstallScreen())

    @work(exclusive=True, group="sync-now")
    async def action_sync_now(self) -> None:
        writes = getattr(self.service, "writes", None)
        if writes is None:
            self.notify("Not connected to the service yet.", severity="warning")
            return
        if self.offline:
            self.notify(
                "Offline mode: nothing is sent. Restart without --offline to sync.", severity="warning"
            )
            return
        try:
            summary = await writes.sync_now()
        except Exception as exc:  # noqa: BLE001
            self.notify(f"Sync failed: {exc}", severity="error")
            return
        self.bar.last_sync = datetime.now(UTC)
        await self.refresh_outbox_counts()
        self.notify(f"Sync: {summary}")

    async def action_quit(self) -> None:
        service = self.service
        if service is not None and hasattr(service, "aclose"):
            try:
                await service.aclose()
            except Exception:  # noqa: BLE001 - quitting must not fail
                pass
        self.exit(0)


def run_app(
    service_factory: ServiceFactory,
    *,
    profile: str,
    read_only: bool = False,
    offline: bool = False,
    keymap: dict[str, str] | None = None,
) -> int:
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", "standard")
    app = FieldApp(service_factory, profile=profile, read_only=read_only, offline=offline, keymap=keymap)
    result = app.run()
    return result or 0
