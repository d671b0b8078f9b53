"""Textual's Footer, rebuilt only when the keys it shows actually change.

Textual's Footer recomposes (unmounts and mounts a widget per key) on every "bindings
updated" signal: each focus change, each screen stack change. Opening the lookup screen sends
five of them before the first frame, and every focus move on any screen costs a rebuild and a
repaint of the bottom line. This one coalesces the signals of one refresh and recomposes only
when the shown keys differ from the last ones drawn. It looks exactly like the Footer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.widgets import Footer

if TYPE_CHECKING:
    from textual.screen import Screen


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

    async def _recompose_if_changed(self) -> None:
        self._pending = False
        if not self.is_attached:
            return
        shown = self._shown_keys()
        if shown == self._drawn:
            return
        self._drawn = shown
        await self.recompose()
