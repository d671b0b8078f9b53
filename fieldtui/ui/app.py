"""The Textual app: screens over FleetService. No network code here; service work runs in workers."""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol, runtime_checkable

from textual import events, work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, TextArea

from fieldtui.service.api import (
    ActionEvent,
    ActionRecord,
    ActionState,
    ConnectivityChange,
    DeviceView,
    FieldService,
    FindMatch,
)
from fieldtui.ui.index import DeviceIndex, DeviceRow
from fieldtui.ui.palette import FieldCommands
from fieldtui.ui.scan import ENTER_GAP, ScanDetector, Verdict
from fieldtui.ui.text import clean
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.waiting import WaitsForService
from fieldtui.ui.widgets.status_bar import BarState, StatusBar

ServiceFactory = Callable[[], Awaitable[FieldService]]


@runtime_checkable
class OutboxListener(Protocol):
    """A screen that shows something an outbox action can change (a device, the outbox)."""

    def outbox_changed(self, event: ActionEvent) -> None: ...


#: How a batch's summary names the end of each of its changes.
_FINAL_WORDS = {
    ActionState.DONE: "synced",
    ActionState.FAILED: "failed",
    ActionState.CONFLICT: "conflict",
    ActionState.CANCELLED: "cancelled",
}


@dataclass(slots=True)
class _Batch:
    """Changes made together (several devices moved at once), told as one."""

    what: str
    waiting: set[str]
    outcomes: list[tuple[str, str]] = field(default_factory=list)


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
        Binding("colon", "command_line", "Cmd", key_display=":", id="command_line"),
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
        samples: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__()
        #: Devices to try, with what each is (the demo names one per cloud, a twin, an offline
        #: one): the lookup lists them while its box is empty.
        self.samples = tuple(samples)
        self.animation_level = "none"  # animation costs bandwidth over SSH
        self._service_factory = service_factory
        self.service: FieldService | None = None
        self.index = DeviceIndex()
        self.bar = BarState(profile=profile, read_only=read_only, offline_mode=offline)
        self.read_only = read_only
        self.offline = offline
        # Applied by each screen's binding chain; set before the first screen is composed, so
        # the footer shows the remapped keys from the first frame.
        self._keymap = self._normalize_keymap(keymap or {})
        self.service_error: str | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        #: action id -> what the technician did, in words: told when its attempt ends.
        self._tracked: dict[str, str] = {}
        #: action id -> the batch it belongs to (a move of several devices): told once, when
        #: the last of them ends.
        self._batches: dict[str, _Batch] = {}
        #: Scanner bursts on any screen (the lookup's box takes its own).
        self._scan: ScanDetector[events.Key] = ScanDetector()
        self._scan_timer: Timer | None = None
        #: Keys that came before the lookup box could take them (a scan at launch), or None
        #: once it can.
        self._early_keys: list[events.Key] | None = []

    # -- keys: scans anywhere, and none lost at launch ---------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            if self._early_keys is not None:
                self._early_keys.append(event)
                return
            # When the key arrived, not when it is handled: a scan's first key may open a
            # screen, and the rest wait in the queue meanwhile.
            now = event.time
            if self._scan.in_burst(now) or self._scan_applies():
                verdict = self._scan.feed(event, event.key, event.character, now)
                if verdict is Verdict.HOLD:
                    self._release_later()
                    return
                if verdict is Verdict.SCAN:
                    self.notify(f"Scanned {clean(self._scan.scanned, 40)}")
                    self.go_to_device(self._scan.scanned)
                    return
                await self._release_held()
        await super().on_event(event)

    def _scan_applies(self) -> bool:
        """A focused text field takes its own keys (the lookup box knows scans itself)."""
        return bool(self.screen_stack) and not isinstance(self.focused, (Input, TextArea))

    def _release_later(self) -> None:
        if self._scan_timer is not None:
            self._scan_timer.stop()
        self._scan_timer = self.set_timer(ENTER_GAP * 1.5, self._release_if_due)

    async def _release_if_due(self) -> None:
        if self._scan.due(time.monotonic()):
            await self._release_held()
        elif self._scan.held:
            self._release_later()

    async def _release_held(self) -> None:
        """Keys held as a possible scan that was not one: handled now, in their order."""
        for key in self._scan.release():
            await super().on_event(key)

    def keys_ready(self) -> str:
        """The lookup box has the focus: what was typed (or scanned) before it had, with
        ``"\n"`` for each Enter, for the box to take as if typed now."""
        early, self._early_keys = self._early_keys, None
        keys = list(early or [])
        typed = ""
        for index, key in enumerate(keys):
            # Typed before the terminal left line mode, Enter arrives as a newline (ctrl+j).
            if key.key in ("enter", "ctrl+j", "ctrl+m"):
                typed += "\n"
            elif key.character is not None and key.is_printable:
                typed += key.character
            else:
                # A key that types nothing (Ctrl+G at launch, F1, Escape): it and every key
                # after it are handled as keys, in their order, once the box has its text.
                for later in keys[index:]:
                    self.post_message(later)
                break
        return typed

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
        if service is None:
            return
        connectivity = service.connectivity
        for name, status in connectivity.snapshot().items():
            self.bar.backends[name] = status.state.value
        self._unsubscribe.append(
            connectivity.on_change(lambda change: self._soon(self._backend_changed, change))
        )
        self._unsubscribe.append(
            service.outbox.on_change(lambda event: self._soon(self._outbox_changed, event))
        )
        await self.refresh_outbox_counts()
        try:
            await self._preload(service.known_devices())
        except Exception as exc:  # noqa: BLE001
            self.notify(f"Cache unavailable: {exc}", severity="warning")
        self.update_bar()
        self._refresh_lookup()
        for screen in list(self.screen_stack):
            if isinstance(screen, WaitsForService):
                screen.service_arrived()

    def _soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback`` on the app's loop, unless the app is closing (a listener that
        outlives the screens would otherwise draw on an empty screen stack)."""
        if self._exit or self._closing or self._closed or not self.screen_stack:
            self._stop_listening()
            return
        self.call_later(callback, *args)

    def _stop_listening(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, []
        for stop in unsubscribe:
            stop()

    async def _preload(self, views: AsyncIterator[DeviceView]) -> None:
        """Fold the cached devices into the index, letting keys through every few hundred."""
        absorbed = 0
        async for view in views:
            self.absorb_view(view)
            absorbed += 1
            if absorbed % PRELOAD_YIELD == 0:
                await asyncio.sleep(0)

    def _backend_changed(self, change: ConnectivityChange) -> None:
        self.bar.backends[change.backend] = change.new.value
        self.update_bar()
        back = change.new.value == "online" and change.old.value in ("offline", "degraded")
        if back and self.bar.pending and not self.offline and not self.read_only:
            self._sync_back_online(change.backend)

    def track_write(self, record: ActionRecord, what: str) -> None:
        """Tell the technician how ``record`` ends (synced, failed, conflict), whenever it does."""
        self._tracked[record.id] = what

    def track_writes(self, records: Sequence[ActionRecord], what: str) -> None:
        """Tell the technician in one line how a batch of changes ends, once the last one has."""
        if len(records) == 1:
            self.track_write(records[0], what)
            return
        batch = _Batch(what, {record.id for record in records})
        for record in records:
            self._batches[record.id] = batch

    def _batch_heard(self, record: ActionRecord, message: str) -> None:
        batch = self._batches.pop(record.id, None)
        if batch is None:
            return
        batch.outcomes.append((_FINAL_WORDS[record.state], record.last_error or message))
        batch.waiting.discard(record.id)
        if batch.waiting:
            return
        from fieldtui.ui.writes import summarise

        text, severity = summarise(batch.what, batch.outcomes)
        failed = severity == "error"
        self.notify(text, severity="error" if failed else "information", timeout=10 if failed else 6)

    async def _outbox_changed(self, event: ActionEvent) -> None:
        """Every open screen hears of an action's change; the bar recounts; a tracked write
        says how it ended."""
        for screen in self.screen_stack:
            if isinstance(screen, OutboxListener):
                screen.outbox_changed(event)
        record = event.record
        if record.id in self._batches and record.state in _FINAL_WORDS:
            self._batch_heard(record, event.message)
        what = self._tracked.get(record.id)
        if what is not None and record.state in (
            ActionState.DONE,
            ActionState.FAILED,
            ActionState.CONFLICT,
            ActionState.CANCELLED,
        ):
            del self._tracked[record.id]
            if record.state is ActionState.DONE:
                self.notify(f"{what}: synced")
            else:
                words = clean(record.last_error or event.message, 160)
                self.notify(f"{what}: {record.state.value}: {words}", severity="error", timeout=10)
        await self.refresh_outbox_counts()

    async def refresh_outbox_counts(self) -> None:
        if self.service is None:
            return
        try:
            counts = await self.service.outbox.counts()
        except Exception:  # noqa: BLE001 - the bar keeps its last counts
            return
        self.bar.pending = counts.pending
        self.bar.failed = counts.failed
        self.bar.conflicts = counts.conflict
        if counts.last_sync is not None:
            self.bar.last_sync = counts.last_sync
        self.bar.sync_error = counts.last_sync_error
        self.update_bar()

    def update_bar(self) -> None:
        """Every screen's bar shows the same state (a screen under another one too, so going
        back never shows an old picture)."""
        for screen in self.screen_stack:
            for bar in screen.query(StatusBar):
                bar.state = self.bar

    def _refresh_lookup(self) -> None:
        from fieldtui.ui.screens.lookup import LookupScreen

        for screen in self.screen_stack:
            # The service can be ready before the lookup screen has composed its widgets.
            if isinstance(screen, LookupScreen) and screen.is_mounted:
                screen.refresh_results()

    # -- the index -----------------------------------------------------------------------
    def absorb_find_update(self, update: FindMatch | DeviceView) -> None:
        """Fold a find match or a device view into the index."""
        self.absorb_view(update.view if isinstance(update, FindMatch) else update)

    def absorb_view(self, view: DeviceView) -> None:
        """Fold a merged device into the index (one row per device id)."""
        device = view.device
        clouds = tuple(dict.fromkeys(s.backend for s in view.sources)) or (device.backend,)
        status = device.installation_status
        self.index.upsert(
            DeviceRow(
                id=device.id,
                name=device.name or "",
                clouds=clouds,
                group=device.group or "",
                installation_status=status.value if status is not None else "",
                online=device.online,
                alerting=bool(device.alerts),
                last_seen=device.last_seen,
                fetched_at=max((s.fetched_at for s in view.sources), default=None),
                stale=bool(view.sources) and all(s.stale for s in view.sources),
            )
        )

    # -- navigation ----------------------------------------------------------------------
    def open_device(self, device_id: str, view: DeviceView | None = None) -> None:
        """Open the device screen; ``view`` (what a lookup already found) is shown at once."""
        from fieldtui.ui.screens.device import DeviceScreen

        self.push_screen(DeviceScreen(device_id, view))

    def go_to_device(self, device_id: str) -> None:
        """Open a device from anywhere (palette, ``:device``, a scan): the stack is cut back to
        the lookup first, so Escape returns to the lookup, not through unrelated screens."""
        self.action_lookup()
        self.open_device(device_id)

    def _go_to(self, screen: Screen[Any]) -> None:
        """A view named on the command line replaces everything above the lookup."""
        self.action_lookup()
        self.push_screen(screen)

    def action_command_line(self) -> None:
        from fieldtui.ui.modals.command_line import CommandLineModal

        self.push_screen(CommandLineModal(), self.run_command_line)

    def run_command_line(self, line: str | None) -> None:
        """Run a ``:`` line (``outbox``, ``device SERIAL``, ``q``...); a wrong one says what is known."""
        from fieldtui.ui.commandline import parse_command_line

        if line is None:
            return
        command = parse_command_line(line)
        if command.problem is not None:
            self.notify(command.problem, severity="warning", timeout=8)
            return
        name = command.name
        if name == "lookup":
            self.action_lookup()
        elif name == "device":
            self.go_to_device(command.argument)
        elif name in ("create", "register", "delete", "edit", "setting"):
            from fieldtui.ui.device_records import run_record_command

            run_record_command(self, name, command.argument)
        elif name == "outbox":
            from fieldtui.ui.screens.outbox import OutboxScreen

            self._go_to(OutboxScreen())
        elif name == "groups":
            from fieldtui.ui.screens.groups import GroupsScreen

            self._go_to(GroupsScreen())
        elif name == "tasks":
            from fieldtui.ui.screens.fleet_tasks import FleetTasksScreen

            self._go_to(FleetTasksScreen())
        elif name == "install":
            from fieldtui.ui.screens.install import InstallScreen

            self._go_to(InstallScreen())
        elif name == "alerts":
            self.action_alerts()
        elif name == "sync":
            self.action_sync_now()
        elif name in ("offline", "online"):
            self.go_offline(name == "offline")
        elif name == "help":
            self.action_help()
        elif name == "quit":
            self.call_later(self.action_quit)

    def action_alerts(self) -> None:
        """The alerts view, where this build has one."""
        try:
            module = importlib.import_module("fieldtui.ui.screens.alerts")
        except ImportError:
            module = None
        screen = module.AlertsScreen() if module is not None else None
        if not isinstance(screen, Screen):
            self.notify("No alerts view in this version: try `fieldtui alerts`.", severity="warning")
            return
        self._go_to(screen)

    def move_devices(self, device_ids: list[str]) -> None:
        from fieldtui.ui.moves import move_devices

        move_devices(self, device_ids)

    async def action_back(self) -> None:
        if len(self.screen_stack) > 1:  # the lookup screen is the bottom of the stack
            self.pop_screen()

    def action_lookup(self) -> None:
        from fieldtui.ui.screens.lookup import LookupScreen

        while len(self.screen_stack) > 1 and not isinstance(self.screen, LookupScreen):
            self.pop_screen()

    def action_help(self) -> None:
        from fieldtui.ui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def action_outbox(self) -> None:
        from fieldtui.ui.screens.outbox import OutboxScreen

        self.push_screen(OutboxScreen())

    def action_groups(self) -> None:
        from fieldtui.ui.screens.groups import GroupsScreen

        self.push_screen(GroupsScreen())

    def action_fleet_tasks(self) -> None:
        from fieldtui.ui.screens.fleet_tasks import FleetTasksScreen

        self.push_screen(FleetTasksScreen())

    def action_install(self) -> None:
        from fieldtui.ui.screens.install import InstallScreen

        self.push_screen(InstallScreen())

    @work(exclusive=True, group="offline")
    async def go_offline(self, offline: bool) -> None:
        """Leave the network (a plant room with no signal) or come back, without a restart."""
        if self.service is None:
            self.notify("Not connected to the service yet.", severity="warning")
            return
        if offline == self.offline:
            self.notify("Already offline." if offline else "Already online.")
            return
        await self.service.set_offline(offline)
        self.offline = offline
        self.bar.offline_mode = offline
        self.update_bar()
        if offline:
            self.notify("Offline: nothing is sent; reads come from the cache; changes wait in the outbox.")
        else:
            self.notify("Online: asking every cloud again; the outbox syncs as they answer.")

    @work(exclusive=True, group="sync-now")
    async def action_sync_now(self) -> None:
        if self.service is None:
            self.notify("Not connected to the service yet.", severity="warning")
            return
        if self.offline:
            self.notify("Offline mode: nothing is sent. Type :online to send again.", severity="warning")
            return
        waiting = self.bar.pending
        self.notify(f"Syncing {waiting} queued change{'s' if waiting != 1 else ''}…", timeout=3)
        await self._sync("Sync")

    async def _sync(self, heading: str) -> None:
        """Send what waits; say what went and, for each change still queued, what it waits for."""
        if self.service is None:
            return
        try:
            summary = await self.service.outbox.sync_now()
        except Exception as exc:  # noqa: BLE001
            self.notify(f"{heading} failed: {clean(exc)}", severity="error")
            return
        self.bar.last_sync = ui_now()
        await self.refresh_outbox_counts()
        reasons = await self._waiting_reasons()
        self.notify(
            f"{heading}: {clean(summary)}" + "".join(f"\n{clean(r, 160)}" for r in reasons),
            severity="warning" if reasons else "information",
            timeout=10 if reasons else 5,
        )

    async def _waiting_reasons(self, limit: int = 3) -> list[str]:
        """Why each still-queued change has not gone (the first few, then how many more)."""
        from fieldtui.ui.outbox_words import describe, why_waiting

        if self.service is None:
            return []
        try:
            records = await self.service.outbox.list_actions()
        except Exception:  # noqa: BLE001 - the summary alone is still true
            return []
        queued = [r for r in records if r.state is ActionState.QUEUED]
        reasons = []
        for record in queued[:limit]:
            why = why_waiting(record, records, self.bar.backends.get(record.action.backend or ""))
            reasons.append(f"{describe(record)}: {why}")
        if len(queued) > limit:
            reasons.append(f"… and {len(queued) - limit} more (outbox: ^O)")
        return reasons

    @work(exclusive=True, group="sync-back-online")
    async def _sync_back_online(self, backend: str) -> None:
        """A cloud came back: what waited for it goes now, and the technician hears so."""
        await self._sync(f"{backend} is reachable again")

    async def action_quit(self) -> None:
        self._stop_listening()
        if self.service is not None:
            try:
                await self.service.aclose()
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
    samples: Sequence[tuple[str, str]] = (),
) -> int:
    if os.environ.get("NO_COLOR"):
        os.environ.setdefault("TEXTUAL_COLOR_SYSTEM", "standard")
    app = FieldApp(
        service_factory,
        profile=profile,
        read_only=read_only,
        offline=offline,
        keymap=keymap,
        samples=samples,
    )
    result = app.run()
    return exit_code(app, result)


def exit_code(app: App[Any], result: int | None) -> int:
    """What ``fieldtui`` exits with: 1 after a crash (README: an unexpected failure), else the
    app's own result (0 when it quit)."""
    if app.return_code:
        return app.return_code
    return result or 0
