"""Pick one cloud's group for a move: type to search, or type a new id to create the group.

What the cloud declares (:class:`GroupRules`) decides what is offered: a reserved group
(things' "unassigned") is picked from the list, never created; a cloud whose groups are free
text on each device offers "New" (the move names it) rather than "Create".
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import getters, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from fieldtui.service.api import Group, GroupRules
from fieldtui.ui.app import FieldApp
from fieldtui.ui.text import age, clean
from fieldtui.ui.widgets.confirm import ConfirmModal


@dataclass(frozen=True, slots=True)
class GroupChoice:
    backend: str
    group: str
    #: True when the group does not exist yet and the technician asked to create it.
    create: bool = False
    description: str | None = None


def rules_of(app: FieldApp, backend: str) -> GroupRules:
    """The cloud's group rules (the defaults when it declares none)."""
    info = app.service.backend(backend) if app.service is not None else None
    return info.group_rules if info is not None and info.group_rules is not None else GroupRules()


def group_option(group: Group, current: str | None) -> Option:
    """One line per group whatever the modal's width (OptionList wraps long prompts)."""
    members = "" if group.member_count is None else f"{group.member_count:>4}"
    mark = "●" if group.id == current else " "
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(f"{mark} {clean(group.id, 26):<26} ")
    label.append(members, style="bold")
    label.append(f"  {clean(group.description or '', 26)}", style="dim")
    return Option(label, id="group:" + group.id)


class GroupPickerModal(ModalScreen[GroupChoice | None]):
    """Type to search one cloud's groups; Enter picks the highlighted one, or creates the typed id."""

    app = getters.app(FieldApp)

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="group_picker_cancel"),
        Binding("down", "to_list", "List", show=False, id="group_picker_list"),
    ]

    def __init__(self, backend: str, device_ids: list[str], current: str | None = None) -> None:
        super().__init__()
        self.backend = backend
        self.device_ids = device_ids
        self.current = current
        self.groups: list[Group] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        count = len(self.device_ids)
        what = clean(self.device_ids[0], 40) if count == 1 else f"{count} devices"
        with Vertical(classes="modal", id="group-picker"):
            yield Static(f"Move {what} to a group on {clean(self.backend)}", classes="modal-title")
            if self.current:
                yield Static(f"Now in: {clean(self.current)}", classes="summary")
            yield Input(placeholder="Search, or type a new group id", id="group-search")
            yield OptionList(id="group-options")
            yield Static("", id="group-picker-message", classes="inline-message")
            yield Static("Enter picks · ↓ list · Esc cancels", classes="summary")

    @property
    def rules(self) -> GroupRules:
        return rules_of(self.app, self.backend)

    def on_mount(self) -> None:
        self.query_one("#group-search", Input).focus()
        self.query_one("#group-picker-message", Static).update("Loading groups…")
        self._load()

    @work(exclusive=True, group="group-picker-load")
    async def _load(self) -> None:
        service = self.app.service
        message = self.query_one("#group-picker-message", Static)
        groups: list[Group] = []
        fetched_at, note = None, None
        try:
            if service is None:
                raise LookupError("not connected to the service yet")
            listing = await service.groups(self.backend)
            groups, fetched_at, note = listing.groups, listing.fetched_at, listing.error
        except Exception as exc:  # noqa: BLE001 - typing an existing id still works
            note = clean(exc)
        self.groups = sorted(groups, key=lambda g: g.id)
        self.loaded = True
        if fetched_at is not None:
            message.update(f"Cached list from {age(fetched_at)}" + (f" ({clean(note, 80)})" if note else ""))
        elif note:
            message.update(f"Groups unavailable: {clean(note, 120)}. Type the group id.")
        else:
            message.update("")
        self._refilter()

    @on(Input.Changed, "#group-search")
    def _search_changed(self) -> None:
        self._refilter()

    def _typed(self) -> str:
        return self.query_one("#group-search", Input).value.strip()

    def _refilter(self) -> None:
        typed = self._typed()
        needle = typed.lower()
        rules = self.rules
        options = self.query_one("#group-options", OptionList)
        options.clear_options()
        shown: list[Option] = []
        if typed and typed not in {g.id for g in self.groups} and typed != rules.reserved:
            verb = "Create" if rules.management_refused is None else "New"
            shown.append(
                Option(Text(f"+ {verb} group {clean(typed, 40)}", style="bold"), id="create:" + typed)
            )
        for group in self.groups:
            if group.id == rules.reserved:
                continue  # offered once, below, as what it means (a cloud may list it too)
            description = (group.description or "").lower()
            if not needle or needle in group.id.lower() or needle in description:
                shown.append(group_option(group, self.current))
        if rules.reserved is not None and (not needle or needle in rules.reserved):
            label = rules.reserved_label or rules.reserved
            shown.append(Option(Text(f"  {clean(label)}", style="italic"), id="group:" + rules.reserved))
        options.add_options(shown)
        if shown:
            # A prefix of an existing group picks that group: creating one is never the
            # default while the typed words match something that exists.
            creating = (shown[0].id or "").startswith("create:")
            options.highlighted = 1 if creating and len(shown) > 1 else 0

    @on(Input.Submitted, "#group-search")
    def _search_submitted(self) -> None:
        option = self.query_one("#group-options", OptionList).highlighted_option
        if option is not None:
            self._choose(option.id or "")
        elif self._typed():
            self._choose("create:" + self._typed())
        else:
            self._say("Type a group id, or pick one from the list.")

    @on(OptionList.OptionSelected, "#group-options")
    def _option_selected(self, event: OptionList.OptionSelected) -> None:
        self._choose(event.option.id or "")

    def _say(self, words: str) -> None:
        self.query_one("#group-picker-message", Static).update(Text(words, style="bold"))

    def _choose(self, option_id: str) -> None:
        kind, _, group = option_id.partition(":")
        if kind == "create":
            problem = self.rules.problem(group, {g.id for g in self.groups})
            if problem is not None:
                self._say(problem)
                return
            self._confirm_create(group)
            return
        if group == self.current and len(self.device_ids) == 1:
            self._say(f"Already in {group}: pick another group, or Esc.")
            return
        self.dismiss(GroupChoice(self.backend, group))

    def _confirm_create(self, group: str) -> None:
        """A new group is a change on the cloud: the technician says yes to it first."""
        count = len(self.device_ids)
        what = clean(self.device_ids[0], 40) if count == 1 else f"{count} devices"
        verb = "Create" if self.rules.management_refused is None else "Start"
        body = f"{verb} the new group {clean(group, 40)} on {clean(self.backend)} and move {what} into it?"

        def answered(yes: bool | None) -> None:
            if yes:
                self.dismiss(GroupChoice(self.backend, group, create=True))
            else:
                self._say("Not created: pick a group from the list, or type another id.")

        self.app.push_screen(ConfirmModal("New group?", body, yes="Create", no="Back"), answered)

    def action_to_list(self) -> None:
        self.query_one("#group-options", OptionList).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)
