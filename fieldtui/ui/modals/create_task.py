"""Create a task: which cloud, what to do (the cloud's declared task kinds), then the item from
the cloud's own list (firmwares, configurations, apps, an app's versions and configurations)
or a typed file id. One list at a time, so it fits 80x24; lists are read in workers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from fieldtui.service.api import BackendInfo, CatalogueItem, TaskKind
from fieldtui.ui.app import FieldApp
from fieldtui.ui.text import clean

STEP_PROMPTS = {
    "cloud": "Which cloud?",
    "kind": "What to do?",
    "item": "Choose from the cloud's list:",
    "version": "Which version?",
    "configs": "App configurations (space marks, Tab then Enter on Create):",
    "file": "Type the file id:",
    "ready": "Ready.",
}


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """What CreateTaskModal returns: the cloud's own task type and attributes."""

    backend: str
    task_type: str
    params: dict[str, Any]
    #: In words, for the notification: "Device firmware 2.4.1".
    label: str


def item_label(item: CatalogueItem) -> str:
    """One line for a firmware, configuration or app: what a technician recognises it by, and its id."""
    label, item_id = clean(item.label, 80), clean(item.id, 40)
    return f"{label}  [{item_id}]" if label and label != item_id else item_id


@dataclass(slots=True)
class _Draft:
    backend: str | None = None
    kind: TaskKind | None = None
    item: CatalogueItem | None = None
    version: str | None = None
    config_ids: list[str] = field(default_factory=list)
    file_id: str = ""


class CreateTaskModal(ModalScreen[TaskRequest | None]):
    """Choose the cloud, what to do and from the cloud's own list; returns a TaskRequest.

    Enter picks and moves on, ``b`` goes back a step.
    """

    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="create_task_cancel"),
        Binding("b", "back_step", "Back a step", id="create_task_back"),
    ]

    def __init__(self, device_id: str, backends: Sequence[BackendInfo], *, model: str | None = None) -> None:
        super().__init__()
        self.device_id = device_id
        self.backends = list(backends)
        #: The device's model: the cloud lists only what is made for it.
        self.model = model
        self.draft = _Draft()
        #: The current step: cloud, kind, item, version, configs, file, ready.
        self.step = ""
        self._items: list[CatalogueItem | None] = []
        self._catalogue_cache: dict[tuple[str, str, tuple[str, ...]], list[CatalogueItem]] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="modal", id="create-task"):
            yield Static(Text(f"New task for {clean(self.device_id)}"), classes="modal-title")
            yield Static("", id="create-task-path")
            yield OptionList(id="create-task-options")
            yield SelectionList[str](id="create-task-configs")
            yield Input(placeholder="file id (digits), then Enter", id="create-task-file")
            yield Static("", id="create-task-hint", classes="inline-message")
            with Horizontal(classes="modal-buttons"):
                yield Button("Cancel \\[esc]", id="create-task-cancel")
                yield Button("Create", id="create-task-create", variant="primary", disabled=True)

    def on_mount(self) -> None:
        if len(self.backends) == 1:
            self.draft.backend = self.backends[0].name
            self._go("kind")
        else:
            self._go("cloud")

    # -- steps -----------------------------------------------------------------------------
    def _kinds(self) -> tuple[TaskKind, ...]:
        info = next((b for b in self.backends if b.name == self.draft.backend), None)
        return info.task_kinds if info is not None else ()

    def _go(self, step: str) -> None:
        self.step = step
        options = self.query_one("#create-task-options", OptionList)
        configs = self.query_one("#create-task-configs", SelectionList)
        file_input = self.query_one("#create-task-file", Input)
        options.display = step in ("cloud", "kind", "item", "version")
        configs.display = step == "configs"
        file_input.display = step == "file"
        self.query_one("#create-task-create", Button).disabled = self._request() is None
        self._hint("")
        if step == "cloud":
            self._offer([Option(f"{clean(b.name)} ({b.kind.value})", id=b.name) for b in self.backends])
        elif step == "kind":
            kinds = self._kinds()
            self._offer([Option(k.label, id=str(i)) for i, k in enumerate(kinds)])
            if not kinds:
                self._hint(f"Tasks on {clean(self.draft.backend)} cannot be created from here.")
        elif step == "item":
            self._offer([])
            self._load_items()
        elif step == "version":
            self._offer([])
            self._load_app_details("version")
        elif step == "configs":
            configs.clear_options()
            self._load_app_details("configs")
        elif step == "file":
            file_input.value = self.draft.file_id
            file_input.focus()
        elif step == "ready":
            self.query_one("#create-task-create", Button).focus()
            self._hint("Enter creates it (queued in the outbox); b goes back.")
        self._draw_path()

    def _offer(self, options: list[Option]) -> None:
        option_list = self.query_one("#create-task-options", OptionList)
        option_list.clear_options()
        if options:
            option_list.add_options(options)
            option_list.highlighted = 0
        option_list.focus()

    def _hint(self, text: str, *, error: bool = False) -> None:
        hint = self.query_one("#create-task-hint", Static)
        hint.set_class(error, "error-message")
        hint.update(Text(text))

    def _draw_path(self) -> None:
        d = self.draft
        parts = [clean(d.backend)] if d.backend else []
        if d.kind:
            parts.append(d.kind.label)
        if d.item is not None:
            parts.append(item_label(d.item))
        if d.version:
            parts.append(f"version {clean(d.version)}")
        if d.config_ids:
            parts.append(f"configs {', '.join(clean(c) for c in d.config_ids)}")
        text = Text(" › ".join(parts) + ("\n" if parts else ""), style="bold")
        text.append(STEP_PROMPTS.get(self.step, ""))
        self.query_one("#create-task-path", Static).update(text)

    # -- loading the cloud's lists -----------------------------------------------------------
    async def _catalogue(self, source: str, *args: str) -> list[CatalogueItem]:
        key = (self.draft.backend or "", source, args)
        if key not in self._catalogue_cache:
            service = self.app.service
            if service is None:
                raise LookupError("not connected to the service yet")
            self._catalogue_cache[key] = await service.catalogue(self.draft.backend or "", source, *args)
        return self._catalogue_cache[key]

    @work(exclusive=True, group="task-catalogue")
    async def _load_items(self) -> None:
        kind = self.draft.kind
        if kind is None:
            return
        self._hint(f"Loading {kind.label.lower()} choices from {clean(self.draft.backend)}…")
        # An installed app is the device's; the other lists are the cloud's, for the device's model.
        args = (self.device_id,) if kind.source == "device_apps" else ((self.model,) if self.model else ())
        try:
            items = await self._catalogue(kind.source, *args)
        except Exception as exc:  # noqa: BLE001 - said inline; b goes back
            self._hint(f"Could not load the list: {clean(exc)} (b goes back)", error=True)
            return
        if self.step != "item":
            return
        self._items = list(items)
        if not items:
            self._hint(f"{clean(self.draft.backend)} lists nothing for {kind.label.lower()}. (b goes back)")
            return
        self._hint(
            f"Made for {clean(self.model)} or any model." if self.model and args[-1:] == (self.model,) else ""
        )
        self._offer([Option(item_label(item), id=str(i)) for i, item in enumerate(items)])

    @work(exclusive=True, group="task-catalogue")
    async def _load_app_details(self, step: str) -> None:
        app_id = self.draft.item.id if self.draft.item is not None else ""
        self._hint("Loading the app's versions and configurations…")
        try:
            found = await self._catalogue("app", app_id)
            details = found[0]
        except Exception as exc:  # noqa: BLE001
            self._hint(f"Could not load the app: {clean(exc)} (b goes back)", error=True)
            return
        if self.step != step:
            return
        self._hint("")
        if step == "version":
            self._items = [None, *details.versions]
            self._offer(
                [Option("latest (the cloud's default)", id="0")]
                + [
                    Option(clean(v.label, 60) or clean(v.id), id=str(i + 1))
                    for i, v in enumerate(details.versions)
                ]
            )
            return
        selection = self.query_one("#create-task-configs", SelectionList)
        selection.clear_options()
        for config in details.configs:
            selection.add_option((item_label(config), config.id, config.id in self.draft.config_ids))
        if not details.configs:
            required = self._configs_required()
            self._hint("This app has no configurations." + (" (b goes back)" if required else ""))
            if not required:
                self._go("ready")
            return
        selection.focus()
        self._sync_create_button()

    # -- picking ---------------------------------------------------------------------------
    @on(OptionList.OptionSelected, "#create-task-options")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        option_id = event.option.id or ""
        d = self.draft
        if self.step == "cloud":
            d.backend = option_id
            d.kind, d.item, d.version, d.config_ids = None, None, None, []
            self._go("kind")
        elif self.step == "kind":
            d.kind = self._kinds()[int(option_id)]
            d.item, d.version, d.config_ids = None, None, []
            self._go("item" if d.kind.source else "file")
        elif self.step == "item" and self._items:
            d.item = self._items[int(option_id)]
            d.version, d.config_ids = None, []
            self._go(self._next_after("item"))
        elif self.step == "version" and self._items:
            chosen = self._items[int(option_id)]
            d.version = chosen.id if chosen is not None else None
            self._go(self._next_after("version"))

    def _next_after(self, step: str) -> str:
        then = self.draft.kind.then if self.draft.kind else ()
        order = ["item", *(s.rstrip("?") for s in then)]
        index = order.index(step) + 1 if step in order else len(order)
        return order[index] if index < len(order) else "ready"

    def _configs_required(self) -> bool:
        return bool(self.draft.kind and "configs" in self.draft.kind.then)

    @on(SelectionList.SelectedChanged, "#create-task-configs")
    def _configs_changed(self) -> None:
        selection: SelectionList[str] = self.query_one("#create-task-configs", SelectionList)
        self.draft.config_ids = list(selection.selected)
        self._sync_create_button()
        self._draw_path()

    @on(Input.Changed, "#create-task-file")
    def _file_changed(self, event: Input.Changed) -> None:
        self.draft.file_id = event.value.strip()
        self._sync_create_button()

    @on(Input.Submitted, "#create-task-file")
    def _file_submitted(self) -> None:
        if self._request() is not None:
            self._create()
        else:
            self._hint("A file id is a number, e.g. 4711.", error=True)

    def _sync_create_button(self) -> None:
        self.query_one("#create-task-create", Button).disabled = self._request() is None

    def _request(self) -> TaskRequest | None:
        d = self.draft
        if d.backend is None or d.kind is None:
            return None
        kind = d.kind
        if not kind.source:
            if not d.file_id.isdigit():
                return None
            return TaskRequest(
                d.backend, kind.task_type, {kind.attribute: d.file_id}, f"{kind.label} (file {d.file_id})"
            )
        if d.item is None or (self.step in ("item", "version") and kind.then):
            return None
        params: dict[str, Any] = {kind.attribute: d.item.id}
        if "version" in kind.then and d.version:
            params["version"] = d.version
        if d.config_ids:
            params["config_ids"] = list(d.config_ids)
        elif self._configs_required():
            return None
        label = f"{kind.label} {clean(d.item.label, 80) or clean(d.item.id)}"
        if d.version:
            label += f" {d.version}"
        return TaskRequest(d.backend, kind.task_type, params, label)

    # -- buttons and keys --------------------------------------------------------------------
    @on(Button.Pressed, "#create-task-create")
    def _create_pressed(self) -> None:
        self._create()

    @on(Button.Pressed, "#create-task-cancel")
    def _cancel_pressed(self) -> None:
        self.dismiss(None)

    def _create(self) -> None:
        request = self._request()
        if request is not None:
            self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_back_step(self) -> None:
        d = self.draft
        if self.step == "ready":
            then = [s.rstrip("?") for s in (d.kind.then if d.kind else ())]
            target: str | None = then[-1] if then else ("file" if d.kind and not d.kind.source else "item")
        else:
            target = {
                "kind": "cloud" if len(self.backends) > 1 else None,
                "item": "kind",
                "file": "kind",
                "version": "item",
                "configs": "version" if d.kind and "version" in d.kind.then else "item",
            }.get(self.step)
        if target is None:
            return
        if target == "kind":
            d.item, d.version, d.config_ids = None, None, []
        self._go(target)
