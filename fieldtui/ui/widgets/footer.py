"""Textual's Footer, rebuilt only when the keys it shows actually change.

Textual's Footer recomposes (unmounts and mounts a widget per key) on every "bindings
updated" signal: each focus change, each screen stack change. Opening the lookup screen sends
five of them before the first frame, and every focus move on any screen costs a rebuild and a
repaint of the bottom line. This one coalesces the signals of one refresh and recomposes only
when the shown keys differ from the last ones drawn. It looks exactly like the Footer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen


#: A key's cells on the footer: " key " then "description ".
KEY_PADDING = 3
#: The palette key drawn at the right edge ("^p palette").
PALETTE_CELLS = 12
#: App-wide keys kept longest when the line is short (help lists every key; quit is the way out).
APP_KEEP = ("help", "quit")


@dataclass(frozen=True, slots=True)
class FooterEntry:
    key_display: str
    description: str
    #: An app-wide key (listed in help on every screen), not one of this screen's.
    app_wide: bool
    #: The binding's action: help and quit are kept longest.
    action: str

    @property
    def cells(self) -> int:
        return len(self.key_display) + len(self.description) + KEY_PADDING


def fit_entries(entries: Sequence[FooterEntry], width: int) -> list[FooterEntry]:
    """The entries that fit ``width`` cells, whole (never a key cut at the edge): the screen's
    own keys first, app-wide ones dropped from the end (help and quit last); when the
    screen's keys alone are too many, the later ones go (help lists them all)."""
    chosen = list(entries)

    def total() -> int:
        return sum(entry.cells for entry in chosen)

    for entry in reversed(list(entries)):
        if total() <= width:
            break
        if entry.app_wide and entry.action not in APP_KEEP:
            chosen.remove(entry)
    for entry in reversed(list(entries)):
        if total() <= width:
            break
        if not entry.app_wide and entry in chosen:
            chosen.remove(entry)
    while chosen and total() > width:
        chosen.pop()
    return chosen


class FieldFooter(Footer):
    """Styled and queried as a Footer (Textual matches a type selector on base classes too)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._drawn: tuple[object, ...] | None = None
        self._pending = False

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._pending:
            self._pending = True
            self.call_after_refresh(self._recompose_if_changed)

    def _shown_keys(self) -> tuple[object, ...]:
        app = self.app
        keys: list[object] = [self.compact, self.show_command_palette, app.ENABLE_COMMAND_PALETTE]
        palette_key = app.COMMAND_PALETTE_BINDING
        for key, (_node, binding, enabled, tooltip) in self.screen.active_bindings.items():
            if binding.show or key == palette_key:
                keys.append(
                    (
                        binding.key,
                        app.get_key_display(binding),
                        binding.description,
                        binding.action,
                        binding.group,
                        binding.show,
                        enabled,
                        tooltip,
                    )
                )
        return tuple(keys)

    def compose(self) -> ComposeResult:
        """Textual's keys, minus the ones that do not fit: the line is never cut mid-key."""
        if not self._bindings_ready:
            return
        app = self.app
        shown: dict[str, tuple[Binding, bool, str, bool]] = {}
        for _key, (node, binding, enabled, tooltip) in self.screen.active_bindings.items():
            if binding.show and binding.action not in shown:
                shown[binding.action] = (binding, enabled, tooltip, node is app)
        # The screen's keys first, then the app's (Textual lists the app's first).
        ordered = sorted(shown.values(), key=lambda item: item[3])
        entries = [
            FooterEntry(app.get_key_display(b), b.description, app_wide, b.action)
            for b, _enabled, _tooltip, app_wide in ordered
        ]
        palette = self.show_command_palette and app.ENABLE_COMMAND_PALETTE
        width = (self.size.width or app.size.width) - (PALETTE_CELLS if palette else 0)
        keep = {entry.action for entry in fit_entries(entries, width)}
        self.styles.grid_size_columns = len(keep)
        for binding, enabled, tooltip, _app_wide in ordered:
            if binding.action in keep:
                yield FooterKey(
                    binding.key,
                    app.get_key_display(binding),
                    binding.description,
                    binding.action,
                    disabled=not enabled,
                    tooltip=tooltip,
                ).data_bind(compact=Footer.compact)
        if palette:
            try:
                _node, binding, enabled, tooltip = self.screen.active_bindings[app.COMMAND_PALETTE_BINDING]
            except KeyError:
                return
            yield FooterKey(
                binding.key,
                app.get_key_display(binding),
                binding.description,
                binding.action,
                classes="-command-palette",
                disabled=not enabled,
                tooltip=binding.tooltip or binding.description,
            )

    def on_resize(self) -> None:
        self._drawn = None
        if self.is_attached and not self._pending:
            self._pending = True
            self.call_after_refresh(self._recompose_if_changed)

    async def _recompose_if_changed(self) -> None:
        self._pending = False
        if not self.is_attached:
            return
        shown = self._shown_keys()
        if shown == self._drawn:
            return
        self._drawn = shown
        await self.recompose()
