"""Breadcrumbs: where the technician is, from the lookup down (``Lookup › 19023480 › Tasks``)."""

from __future__ import annotations

from typing import Any

from textual.screen import ModalScreen, Screen

from fieldtui.ui.text import clean

#: Screens by their class name, as the crumbs and the help title call them.
TITLES = {
    "LookupScreen": "Lookup",
    "DeviceScreen": "Device",
    "DeviceTasksScreen": "Tasks",
    "TelemetryScreen": "Telemetry",
    "OutboxScreen": "Outbox",
    "GroupsScreen": "Groups",
    "FleetTasksScreen": "Fleet tasks",
    "InstallScreen": "Guided installation",
    "AlertsScreen": "Alerts",
}


def screen_title(screen: Screen[Any]) -> str:
    name = type(screen).__name__
    return TITLES.get(name, name.removesuffix("Screen") or name)


def crumb(screen: Screen[Any]) -> str:
    """One step: the device screen is named by its device (the title says which one)."""
    if type(screen).__name__ == "DeviceScreen":
        device = getattr(screen, "device_id", None)
        if isinstance(device, str):
            return clean(device, 24)
    return screen_title(screen)


def crumbs(stack: list[Screen[Any]], upto: Screen[Any]) -> str:
    """The path to ``upto`` through the stack, modals left out; "" on the lookup alone."""
    steps: list[str] = []
    for screen in stack:
        if not isinstance(screen, ModalScreen):
            steps.append(crumb(screen))
        if screen is upto:
            break
    return " › ".join(steps) if len(steps) > 1 else ""
