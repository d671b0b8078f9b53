"""What a cloud declares beyond its capabilities: task kinds, commands, group naming rules.

Connectors fill these in (the vendor knowledge lives there); the app renders what they declare
and never names a vendor's task type, catalogue or group rule itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class TaskKind:
    """One entry of "what to do" when creating a task, and how its attributes are chosen."""

    label: str
    #: The cloud's own task type, sent as it is.
    task_type: str
    #: The catalogue to choose from (:meth:`catalogue` source name), or "" for a typed file id.
    source: str
    #: The attribute the chosen item's id goes into.
    attribute: str
    #: Further steps: "version" (an app version), "configs" (app configurations, at least one),
    #: "configs?" (app configurations, optional).
    then: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandKind:
    """A command the cloud (or its devices) accepts, with the parameters it takes."""

    name: str
    label: str
    #: Parameter names the command takes (free-form values).
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CatalogueItem:
    """One firmware, configuration, app or app version of a cloud's catalogue."""

    id: str
    #: What a technician recognises it by: "MTR firmware · 2.4.1".
    label: str
    #: The model (family) it is made for; None for any.
    model: str | None = None
    #: For an app: its versions and configurations, as nested items.
    versions: tuple[CatalogueItem, ...] = ()
    configs: tuple[CatalogueItem, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupRules:
    """How a cloud names groups and what may be done with them."""

    #: Ids the cloud refuses whitespace in.
    no_spaces: bool = True
    #: A reserved group (things' "unassigned"): chosen to take a device out of its group,
    #: never created, renamed or deleted.
    reserved: str | None = None
    #: Why groups cannot be created, renamed or deleted (None: they can).
    management_refused: str | None = None
    #: The label for the reserved group in a picker.
    reserved_label: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    def problem(self, group_id: str, existing: set[str] | frozenset[str] = frozenset()) -> str | None:
        """Why ``group_id`` cannot name a new group, in words a technician can act on."""
        if not group_id:
            return "Type a group id first."
        if self.no_spaces and any(ch.isspace() for ch in group_id):
            suggestion = "-".join(group_id.split())
            return f"Group ids cannot contain spaces: the cloud refuses them. Try {suggestion!r}."
        if self.reserved is not None and group_id == self.reserved:
            return (
                f'"{self.reserved}" is reserved: it is where devices without a group are. '
                f"Pick another id (to take devices out of their group, choose {self.reserved} from the list)."
            )
        if group_id in existing:
            return f"{group_id!r} already exists: pick it from the list instead."
        return None
