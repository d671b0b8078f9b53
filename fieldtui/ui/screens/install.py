"""Guided installation: scan, found and reachable, telemetry seen, group, installed, confirmed, summary.

Each step says what it is waiting for; ``s`` skips it with a reason (kept in the summary).
A step that cannot be checked (offline, or the device's cloud has no such thing) says so
plainly and the walk goes on; every change is queued in the outbox whatever the signal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rich.text import Text
from textual import getters, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from fieldtui.core.errors import DeviceNotFound, NoBackendReachable, Unsupported
from fieldtui.core.models import TelemetrySample
from fieldtui.service.api import DeviceView, FieldService
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import offering
from fieldtui.ui.modals.group_picker import GroupChoice, GroupPickerModal
from fieldtui.ui.modals.skip_reason import SkipReasonModal
from fieldtui.ui.moves import queue_moves
from fieldtui.ui.text import age, clean, yes_no
from fieldtui.ui.text import now as ui_now
from fieldtui.ui.widgets.footer import FieldFooter
from fieldtui.ui.widgets.status_bar import StatusBar
from fieldtui.ui.writes import first_outcomes

STEPS: tuple[tuple[str, str], ...] = (
    ("scan", "Scan the serial"),
    ("found", "Found and reachable"),
    ("telemetry", "Telemetry seen"),
    ("group", "Put in a group"),
    ("install", "Marked installed"),
    ("confirm", "First telemetry after installation"),
    ("summary", "Summary"),
)
#: Seconds between looks at a device that was found but is not reporting yet.
REACHABLE_POLL = 5.0
#: Samples older than the installation by more than this do not confirm it (clock skew allowance).
CONFIRM_SKEW = timedelta(seconds=2)
#: A message older than this when it arrives is history replayed at the stream's start: the
#: "telemetry seen" step waits for a live one.
LIVE_AGE = timedelta(minutes=2)

#: Where a step's note starts: " ✓ " and "N " and the title padded to 34 cells, then a space.
NOTE_COLUMN = 40

MARKS = {
    "pending": ("·", "dim"),
    "active": ("▶", "bold"),
    "done": ("✓", "green"),
    "queued": ("⧗", "yellow"),
    "skipped": ("↷", "yellow"),
    "unchecked": ("?", "yellow"),
    "failed": ("✗", "red"),
}


@dataclass(slots=True)
class StepResult:
    state: str = "pending"
    note: str = ""


@dataclass(slots=True)
class Walk:
    """One device's installation, step by step."""

    device_id: str = ""
    view: DeviceView | None = None
    results: dict[str, StepResult] = field(default_factory=lambda: {key: StepResult() for key, _ in STEPS})
    current: str = "scan"
    installed_at: datetime | None = None
    group: str | None = None

    def set(self, step: str, state: str, note: str = "") -> None:
        self.results[step] = StepResult(state, note)


class InstallScreen(Screen[None]):
    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("s", "skip", "Skip step", id="install_skip"),
        Binding("enter", "act", "Do step", id="install_act"),
        Binding("n", "next_device", "Next device", id="install_next"),
        Binding("escape", "back", "Back", id="install_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.walk = Walk()
        self._pending_choice: GroupChoice | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status-bar")
        yield Static(Text(" Guided installation", style="bold"), id="install-title")
        yield Static("", id="install-steps", classes="facts")
        yield Static("", id="install-wait", classes="install-wait")
        yield Input(placeholder="Scan or type the serial, then Enter", id="install-serial")
        yield Static("", id="install-keys", classes="summary")
        yield FieldFooter()

    def on_mount(self) -> None:
        self.app.update_bar()
        self._enter("scan")

    # -- drawing -----------------------------------------------------------------------------
    def _draw(self, waiting: str | Text | None = None) -> None:
        walk = self.walk
        text = Text()
        for number, (key, title) in enumerate(STEPS, start=1):
            result = walk.results[key]
            glyph, style = MARKS[result.state]
            line_style = "reverse" if key == walk.current and key != "summary" else ""
            text.append(f" {glyph} ", style=style)
            text.append(
                f"{number} {title:<34}", style=line_style or ("bold" if result.state == "active" else "")
            )
            if result.note:
                # A note that wraps continues under its own first column, not at the left edge.
                note = Text(clean(result.note, 90), style="dim" if result.state == "done" else style)
                room = max(20, (self.size.width or self.app.size.width) - 2 - NOTE_COLUMN)
                for index, line in enumerate(note.wrap(self.app.console, room)):
                    text.append("\n" + " " * NOTE_COLUMN if index else " ")
                    text.append_text(line)
            text.append("\n")
        self.query_one("#install-steps", Static).update(text)
        if waiting is not None:
            self.query_one("#install-wait", Static).update(waiting)
        serial = self.query_one("#install-serial", Input)
        serial.display = walk.current == "scan"
        if walk.current == "scan":
            serial.focus()
        elif serial.has_focus:
            self.set_focus(None)  # keys (Enter, s) go to the step, not to the hidden serial field
        keys = {
            "scan": "Scan or type the serial, Enter · Esc leaves",
            "summary": "n next device · Esc leaves",
            "group": "Enter picks the group · s skips with a reason · Esc leaves",
            "install": "Enter marks it installed · s skips with a reason · Esc leaves",
        }.get(walk.current, "s skips with a reason · Esc leaves")
        self.query_one("#install-keys", Static).update(f" {keys}")

    def _wait_text(self, what: str, detail: str = "") -> Text:
        text = Text()
        text.append(" Waiting for: ", style="bold")
        text.append(what)
        if detail:
            text.append(f"\n {detail}", style="dim")
        return text

    # -- the walk ----------------------------------------------------------------------------
    def _enter(self, step: str) -> None:
        walk = self.walk
        walk.current = step
        if step != "summary":
            walk.results[step] = StepResult("active", "")
        self.workers.cancel_group(self, "install-step")
        if step == "scan":
            self._draw(self._wait_text("a serial: scan it, or type it and press Enter"))
        elif step == "found":
            self._draw(self._wait_text(f"the clouds to find {clean(walk.device_id)}"))
            self.run_worker(self._find(), group="install-step", exclusive=True)
        elif step == "telemetry":
            self._draw(self._wait_text(f"a first telemetry message from {clean(walk.device_id)}"))
            self.run_worker(self._telemetry(step), group="install-step", exclusive=True)
        elif step == "group":
            self._enter_group()
        elif step == "install":
            self._enter_install()
        elif step == "confirm":
            self._draw(self._wait_text("telemetry sent after the installation was marked"))
            self.run_worker(self._telemetry(step), group="install-step", exclusive=True)
        else:
            self._draw(self._summary())

    def _finish(self, step: str, state: str, note: str = "") -> None:
        """Record the outcome of ``step`` and go to the next one."""
        self.walk.set(step, state, note)
        keys = [key for key, _ in STEPS]
        following = keys[keys.index(step) + 1]
        self._enter(following)

    @on(Input.Submitted, "#install-serial")
    def _serial_submitted(self, event: Input.Submitted) -> None:
        if self.walk.current != "scan":
            return
        serial = event.value.strip()
        if not serial:
            self._draw(self._wait_text("a serial: the scan was empty, try again"))
            return
        self.walk.device_id = serial
        self._finish("scan", "done", serial)

    def _service(self) -> FieldService | None:
        return self.app.service

    def _offline(self) -> bool:
        service = self._service()
        return self.app.offline or (service is not None and service.offline)

    # -- found and reachable -------------------------------------------------------------------
    async def _find(self) -> None:
        walk = self.walk
        service = self._service()
        if service is None:
            self._draw(self._wait_text("the app to connect to the clouds", "Esc, then come back in a moment"))
            return
        offline = self._offline()
        while True:
            try:
                view = await service.device(walk.device_id)
            except Exception as exc:  # noqa: BLE001 - said on screen, never a traceback
                if isinstance(exc, DeviceNotFound):
                    walk.set("found", "failed", clean(exc, 120))
                    self._draw(
                        Text(
                            f" {clean(exc)}\n Check the serial: Esc, then scan again (or n for a new scan).",
                            style="bold red",
                        )
                    )
                    return
                if offline or isinstance(exc, NoBackendReachable):
                    self._finish(
                        "found",
                        "unchecked",
                        f"cannot check: {'offline' if offline else clean(exc, 80)}; changes will queue",
                    )
                    return
                self._draw(self._wait_text("the clouds to answer", f"{clean(exc, 120)} · retrying · s skips"))
                await asyncio.sleep(REACHABLE_POLL)
                continue
            walk.view = view
            self.app.absorb_find_update(view)
            device = view.device
            clouds = ", ".join(dict.fromkeys(clean(s.backend) for s in view.sources))
            if view.stale:
                self._finish(
                    "found",
                    "unchecked",
                    f"on {clouds} (cached {age(view.sources[0].fetched_at)}); reachability cannot be checked offline",
                )
                return
            if device.online:
                self._finish("found", "done", f"on {clouds}, online, seen {age(device.last_seen)}")
                return
            self._draw(
                self._wait_text(
                    f"{clean(walk.device_id)} to report (found on {clouds})",
                    f"online: {yes_no(device.online)} · last seen {age(device.last_seen)} · "
                    f"looking again every {REACHABLE_POLL:g} s · s skips with a reason",
                )
            )
            await asyncio.sleep(REACHABLE_POLL)

    # -- telemetry (before and after installation) ------------------------------------------------
    async def _telemetry(self, step: str) -> None:
        walk = self.walk
        service = self._service()
        if service is None or self._offline():
            self._finish(step, "unchecked", "cannot check offline: live telemetry needs the network")
            return
        if step == "confirm" and walk.installed_at is None:
            self._finish(step, "unchecked", "the installation was not marked, nothing to confirm")
            return
        after = walk.installed_at - CONFIRM_SKEW if step == "confirm" and walk.installed_at else None
        if step == "telemetry":
            # History a cloud replays when the stream opens is not the device reporting now.
            after = ui_now() - LIVE_AGE
        waiting_for = (
            "telemetry sent after the installation was marked"
            if step == "confirm"
            else "a live telemetry message"
        )
        stream = service.telemetry(walk.device_id)
        seen = 0
        try:
            async for item in stream:
                if not isinstance(item, TelemetrySample):
                    note = clean(item.message, 100)
                    if note:
                        self._draw(self._wait_text("telemetry", f"{note} · s skips with a reason"))
                    continue
                seen += 1
                if after is not None and item.timestamp < after:
                    self._draw(
                        self._wait_text(
                            waiting_for,
                            f"{seen} older message(s) seen, latest {item.timestamp:%H:%M:%S}Z"
                            f" ({age(item.timestamp, ui_now())}) · s skips",
                        )
                    )
                    continue
                metrics = ", ".join(
                    f"{clean(k, 20)}={clean(v, 12)}" for k, v in list(item.metrics.items())[:4]
                )
                self._finish(step, "done", f"{item.timestamp:%H:%M:%S}Z {metrics}")
                return
        except Exception as exc:  # noqa: BLE001 - a cloud without telemetry cannot be checked
            if isinstance(exc, Unsupported):
                self._finish(step, "unchecked", f"cannot check: {clean(exc, 100)}")
            elif isinstance(exc, NoBackendReachable):
                self._finish(step, "unchecked", f"cannot check: no cloud reachable ({clean(exc, 80)})")
            else:
                self._finish(step, "unchecked", f"cannot check: {clean(exc, 100)}")
            return
        finally:
            if isinstance(stream, AsyncGenerator):
                try:
                    await stream.aclose()
                except Exception:  # noqa: BLE001 - closing must not hide the outcome
                    pass
        self._finish(step, "unchecked", "the telemetry stream ended before a message came")

    # -- group -------------------------------------------------------------------------------------
    def _backend_for(self, capability: str) -> tuple[str | None, str | None]:
        """(backend, why not): the device's cloud that offers ``capability``."""
        service = self._service()
        if service is None:
            return None, "not connected to the service yet"
        view = self.walk.view
        if view is None:
            capable = offering(service, capability)
            if len(capable) == 1:
                return capable[0].name, None
            return None, "the device's cloud is unknown (not found yet)"
        reasons = []
        for source in view.sources:
            info = service.backend(source.backend)
            if info is None:
                continue
            why = info.why_not(capability)
            if why is None:
                return source.backend, None
            reasons.append(why)
        return None, reasons[0] if reasons else "not offered by the device's clouds"

    def _enter_group(self) -> None:
        backend, why = self._backend_for("groups")
        if backend is None:
            self._finish("group", "unchecked", f"not available: {why}")
            return
        current = self.walk.view.device.group if self.walk.view is not None else None
        self._draw(
            self._wait_text(
                f"a group on {clean(backend)}: press Enter to pick or create one",
                f"now in: {clean(current) or 'no group'}",
            )
        )

    def _open_group_picker(self) -> None:
        backend, why = self._backend_for("groups")
        if backend is None:
            self._finish("group", "unchecked", f"not available: {why}")
            return
        current = self.walk.view.device.group if self.walk.view is not None else None

        def chosen(choice: GroupChoice | None) -> None:
            if choice is not None:
                self.run_worker(self._queue_group(choice, current), group="install-step", exclusive=True)

        self.app.push_screen(GroupPickerModal(backend, [self.walk.device_id], current), chosen)

    async def _queue_group(self, choice: GroupChoice, current: str | None) -> None:
        self._draw(self._wait_text(f"the move to {clean(choice.group)} to be queued"))
        outcomes = await queue_moves(self.app, choice, [self.walk.device_id], {self.walk.device_id: current})
        status, reason = outcomes[0] if outcomes else ("failed", "not queued")
        self.walk.group = choice.group
        state = {"synced": "done", "failed": "failed", "conflict": "failed"}.get(status, "queued")
        note = f"{choice.group}: {status}" + (
            f" ({clean(reason, 80)})" if reason and status != "synced" else ""
        )
        self._finish("group", state, note)

    # -- mark installed --------------------------------------------------------------------------
    def _enter_install(self) -> None:
        backend, why = self._backend_for("installation_status")
        if backend is None and self.walk.view is not None:
            self._finish("install", "unchecked", f"not available: {why}")
            return
        view = self.walk.view
        current = None
        if view is not None:
            status = view.device.installation_status
            current = status.value if status is not None else None
        self._draw(
            self._wait_text(
                "Enter to mark the device installed",
                f"installation status now: {clean(current) or 'unknown'}",
            )
        )

    async def _mark_installed(self) -> None:
        service = self._service()
        if self.app.read_only:
            self._draw(
                Text(" Read-only: the installation cannot be marked. s skips with a reason.", style="bold")
            )
            return
        if service is None:
            self._draw(
                Text(" Not connected to the service yet; press Enter again in a moment.", style="bold")
            )
            return
        backend, _ = self._backend_for("installation_status")
        view = self.walk.view
        precondition = None
        if view is not None and view.device.installation_status is not None:
            precondition = {"status": view.device.installation_status.value}
        self._draw(self._wait_text("the installation to be queued"))
        try:
            record = await service.writes.set_installation_status(
                self.walk.device_id, "installed", backend=backend, precondition=precondition
            )
        except Exception as exc:  # noqa: BLE001 - refused before queuing: said, step stays
            self._draw(Text(f" Not queued: {clean(exc)}. Enter tries again · s skips.", style="bold red"))
            return
        self.walk.installed_at = ui_now()
        await self.app.refresh_outbox_counts()
        self._draw(
            self._wait_text("the cloud to accept the installation", "it is queued in the outbox already")
        )
        ((status, reason),) = await first_outcomes(service.writes, [record])
        if status in ("queued", "sending"):
            self.app.track_write(record, f"{clean(self.walk.device_id)} installed")
        await self.app.refresh_outbox_counts()
        if status == "synced":
            self.walk.installed_at = ui_now()
            self._finish("install", "done", "installed: synced")
        elif status in ("failed", "conflict"):
            self._finish("install", "failed", f"{status}: {clean(reason, 100)}")
        else:
            self._finish(
                "install", "queued", f"installed: queued ({clean(reason, 80) or 'waits for the network'})"
            )

    # -- summary -----------------------------------------------------------------------------------
    def _summary(self) -> Text:
        walk = self.walk
        text = Text()
        text.append(f" {clean(walk.device_id)}: ", style="bold")
        states = [r.state for k, r in walk.results.items() if k != "summary"]
        if all(s == "done" for s in states):
            text.append("installed and confirmed.", style="bold green")
        elif "failed" in states:
            text.append(
                "needs attention: a step failed (see above; the outbox has the details).", style="bold red"
            )
        else:
            queued = sum(s == "queued" for s in states)
            skipped = sum(s in ("skipped", "unchecked") for s in states)
            text.append(
                f"done with {queued} change(s) queued and {skipped} step(s) skipped or unchecked.",
                style="bold yellow",
            )
        text.append("\n n scans the next device.", style="dim")
        return text

    # -- keys --------------------------------------------------------------------------------------
    def action_act(self) -> None:
        step = self.walk.current
        if step == "group":
            self._open_group_picker()
        elif step == "install":
            self.run_worker(self._mark_installed(), group="install-step", exclusive=True)
        elif step == "summary":
            self.action_next_device()

    def action_skip(self) -> None:
        step = self.walk.current
        if step in ("scan", "summary"):
            return
        title = dict(STEPS)[step]

        def skipped(reason: str | None) -> None:
            if reason and self.walk.current == step:
                self._finish(step, "skipped", reason)

        self.app.push_screen(SkipReasonModal(title), skipped)

    def action_next_device(self) -> None:
        self.workers.cancel_group(self, "install-step")
        self.walk = Walk()
        self.query_one("#install-serial", Input).value = ""
        self._enter("scan")

    def action_back(self) -> None:
        self.workers.cancel_group(self, "install-step")
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # On the scan step, letters go to the serial field, not to bindings.
        return not (self.walk.current == "scan" and action in ("skip", "next_device", "act"))
