"""Stylesheets (top-level styles/ in the source tree, fieldtui.styles in the wheel)."""
