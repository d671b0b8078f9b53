"""Creating, renaming and deleting a cloud's groups from the groups screen, as the cloud
declares (:class:`GroupRules`): each is one outbox action, its outcome told in one line."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from fieldtui.service.api import ActionRecord, Writes
from fieldtui.ui.app import FieldApp
from fieldtui.ui.backends import offering
from fieldtui.ui.modals.group_name import GroupNameModal
from fieldtui.ui.modals.group_picker import rules_of
from fieldtui.ui.screens.group_rows import GroupRow
from fieldtui.ui.text import clean
from fieldtui.ui.widgets.confirm import ConfirmModal
from fieldtui.ui.writes import submit_write

Reload = Callable[[], None]


def _manageable(app: FieldApp, backend: str) -> bool:
    return rules_of(app, backend).management_refused is None


def _manage_target(app: FieldApp, backend: str | None = None) -> str | None:
    """The cloud whose groups change (``backend``, else the first that lets them), or None
    once the technician was told why none can."""
    service = app.service
    if app.read_only:
        app.notify("Read-only: groups cannot be changed.", severity="warning")
        return None
    if service is None:
        app.notify("Not connected to the service yet.", severity="warning")
        return None
    names = (
        [backend] if backend else [b.name for b in offering(service, "groups") if _manageable(app, b.name)]
    )
    if not names:
        app.notify("No configured cloud lets groups be created here.", severity="warning")
        return None
    refusal = rules_of(app, names[0]).management_refused
    if refusal is not None:
        app.notify(refusal, severity="warning")
        return None
    return names[0]


def _submit(
    app: FieldApp, what: str, call: Callable[[Writes], Awaitable[ActionRecord]], reload: Reload
) -> None:
    app.run_worker(submit_write(app, what, call, after=reload), group="groups-write")


def new_group(app: FieldApp, rows: Sequence[GroupRow], selected: GroupRow | None, reload: Reload) -> None:
    """Ask for a new group's id (and description) on the highlighted group's cloud, and queue it."""
    backend = _manage_target(
        app, selected.backend if selected and _manageable(app, selected.backend) else None
    )
    if backend is None:
        return
    existing = [r.id for r in rows if r.backend == backend]

    def done(answer: tuple[str, str | None] | None) -> None:
        if answer is not None:
            group, description = answer
            _submit(
                app, f"Create group {group}", lambda w: w.create_group(backend, group, description), reload
            )

    app.push_screen(
        GroupNameModal(f"New group on {clean(backend)}", rules=rules_of(app, backend), existing=existing),
        done,
    )


def rename_group(app: FieldApp, rows: Sequence[GroupRow], row: GroupRow | None, reload: Reload) -> None:
    """Ask for the highlighted group's new id, and queue the rename."""
    if row is None:
        app.notify("Highlight a group to rename.")
        return
    if _manage_target(app, row.backend) is None:
        return
    existing = [r.id for r in rows if r.backend == row.backend]

    def done(answer: tuple[str, str | None] | None) -> None:
        if answer is not None:
            new, _ = answer
            _submit(
                app, f"Rename {row.id} to {new}", lambda w: w.rename_group(row.backend, row.id, new), reload
            )

    app.push_screen(
        GroupNameModal(
            f"Rename {clean(row.id)} on {clean(row.backend)}",
            rules=rules_of(app, row.backend),
            existing=existing,
            initial=row.id,
            describe=False,
        ),
        done,
    )


def delete_group(app: FieldApp, row: GroupRow | None, reload: Reload) -> None:
    """Confirm, saying what becomes of the members, then queue the deletion."""
    if row is None:
        app.notify("Highlight a group to delete.")
        return
    if _manage_target(app, row.backend) is None:
        return
    reserved = rules_of(app, row.backend).reserved
    where = f"become {reserved}" if reserved else "leave the group"
    members = "" if row.member_count is None else f" Its {row.member_count} member(s) {where}."

    def done(answer: bool | None) -> None:
        if answer:
            _submit(app, f"Delete group {row.id}", lambda w: w.delete_group(row.backend, row.id), reload)

    app.push_screen(
        ConfirmModal(
            f"Delete group {clean(row.id)} on {clean(row.backend)}?",
            f"The group is removed from the cloud.{members}",
            yes="Delete",
        ),
        done,
    )
