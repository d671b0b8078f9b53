"""One table for every list on screen: columns as data, rows filled from objects.

A screen says what its columns are (:class:`Column`: key, label, width and how to render one
object as the cell) and hands the table its objects; :class:`ProjectTable` builds the rows in
one batch (one redraw however many rows), keeps the cursor on the same row key when the rows
are refreshed, and tells which object is under the cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from rich.text import Text
from textual.widgets import DataTable

T = TypeVar("T")
Cell = str | Text


@dataclass(frozen=True, slots=True)
class Column(Generic[T]):
    """One column: its key, its header, its width (None: the rest) and how an object shows in it."""

    key: str
    label: str
    width: int | None
    render: Callable[[T], Cell]


class ProjectTable(DataTable[Cell], Generic[T]):
    """A row-cursor table of objects described by :class:`Column` specs.

    ``key`` gives each object a stable row key (the cursor follows it across refreshes);
    :meth:`selected` returns the object under the cursor.
    """

    def __init__(
        self,
        columns: Sequence[Column[T]],
        key: Callable[[T], str],
        *,
        id: str | None = None,
        classes: str | None = None,
        zebra_stripes: bool = True,
    ) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=zebra_stripes)
        self.specs = list(columns)
        self._key = key
        self._objects: dict[str, T] = {}
        self._order: list[str] = []

    def on_mount(self) -> None:
        for column in self.specs:
            self.add_column(column.label, key=column.key, width=column.width)

    @property
    def objects(self) -> list[T]:
        """The objects shown, in row order."""
        return [self._objects[key] for key in self._order]

    def fill(self, objects: Iterable[T]) -> None:
        """Show ``objects`` (in this order), keeping the cursor on the same row when it is still there."""
        keep = self.selected_key()
        rows: list[tuple[str, list[Cell]]] = []
        self._objects = {}
        for obj in objects:
            key = self._key(obj)
            if key in self._objects:
                continue  # one row per key: the first (newest) copy wins
            self._objects[key] = obj
            rows.append((key, [column.render(obj) for column in self.specs]))
        self._order = [key for key, _ in rows]
        with self.app.batch_update():
            fill_table(self, rows, keep=keep)

    def selected_key(self) -> str | None:
        return selected_key(self)

    def selected(self) -> T | None:
        key = self.selected_key()
        return self._objects.get(key) if key is not None else None


def fill_table(
    table: DataTable[Any], rows: Sequence[tuple[str, Sequence[Any]]], *, keep: str | None = None
) -> None:
    """Replace a table's rows, keeping the cursor on the same row key when it is still there."""
    if keep is None:
        keep = selected_key(table)
    table.clear()
    target = 0
    for index, (key, cells) in enumerate(rows):
        table.add_row(*cells, key=key)
        if key == keep:
            target = index
    if rows:
        table.move_cursor(row=target, animate=False)


def selected_key(table: DataTable[Any]) -> str | None:
    """The row key under the cursor (None for an empty table)."""
    if not table.row_count or table.cursor_row < 0:
        return None
    try:
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except Exception:  # noqa: BLE001 - no cursor row: nothing selected
        return None
