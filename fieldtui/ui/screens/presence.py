"""Is a screen (or a pane on it) still there to draw on? Answers from the clouds arrive in
workers, after awaits: by then the technician may have left, or the app may be closing."""

from __future__ import annotations

from textual.widget import Widget


def screen_gone(node: Widget) -> bool:
    """``node``'s screen was taken off the stack (another device opened, Escape) or the app is
    quitting: its widgets are going or gone, so an answer that still arrives has nothing to
    draw on (and must not end the app with a traceback)."""
    app = node.app
    return not app.is_running or not node.is_attached or node.screen not in app.screen_stack
