"""Which of the configured clouds offer what, as the port declares it (:class:`BackendInfo`)."""

from __future__ import annotations

from collections.abc import Iterable

from fieldtui.service.api import BackendInfo, DeviceView, FieldService


def view_backends(view: DeviceView | None) -> list[str]:
    """The clouds that answered for a device, in the view's order."""
    if view is None:
        return []
    return list(dict.fromkeys(s.backend for s in view.sources))


def offering(service: FieldService, capability: str, among: Iterable[str] | None = None) -> list[BackendInfo]:
    """The clouds (``among`` these names, else all configured) that offer ``capability``."""
    names = list(among) if among is not None else [b.name for b in service.backends()]
    found = []
    for name in names:
        info = service.backend(name)
        if info is not None and info.why_not(capability) is None:
            found.append(info)
    return found


def reasons(service: FieldService, capability: str, among: Iterable[str]) -> list[str]:
    """Why each of ``among`` does not offer ``capability`` (distinct, in order)."""
    found: list[str] = []
    for name in among:
        info = service.backend(name)
        why = f"{name} is not configured" if info is None else info.why_not(capability)
        if why and why not in found:
            found.append(why)
    return found


def device_clouds(service: FieldService, view: DeviceView | None, capability: str) -> list[BackendInfo]:
    """The device's clouds that offer ``capability`` (every configured one before it is found)."""
    names = view_backends(view)
    return offering(service, capability, names or None)
