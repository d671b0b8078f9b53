"""A device's diagnostics: what each of its clouds holds beyond its record, in one view.

Built on the port alone (``device`` to learn which clouds hold the device, then
``cloud_details`` of each, concurrently), so the session and the in-memory fake answer it the
same way. A cloud that keeps nothing more, or cannot be asked offline, is *skipped* with why; a
cloud that fails is an *error* in the one vocabulary ``<what happened> (<what to do>)``; a cloud
that could not be asked whether it holds the device at all is an error too (it may hold it).
"""

from __future__ import annotations

import asyncio

from fieldtui.core.errors import BackendError, ConfigError, FieldtuiError, Unsupported
from fieldtui.core.ids import valid_id
from fieldtui.service.api import CloudDetails, DiagnosticsView, Reads


async def gather_diagnostics(reads: Reads, device_id: str, backend: str | None = None) -> DiagnosticsView:
    device_id = valid_id(device_id)
    if backend is not None and reads.backend(backend) is None:
        names = ", ".join(info.name for info in reads.backends())
        raise ConfigError(f"no backend named {backend!r} in this profile; allowed: {names}")
    view = await reads.device(device_id)
    holders = list(dict.fromkeys(source.backend for source in view.sources))
    errors = {name: why for name, why in view.errors.items() if name not in holders}
    if backend is not None:
        errors = {name: why for name, why in errors.items() if name == backend}
        if backend not in holders and backend not in errors:
            raise Unsupported(f"{backend} does not hold {device_id}", backend=backend)
        holders = [name for name in holders if name == backend]

    async def one(name: str) -> CloudDetails | FieldtuiError:
        try:
            return await reads.cloud_details(device_id, name)
        except (BackendError, Unsupported) as exc:
            return exc

    results = await asyncio.gather(*(one(name) for name in holders))
    details: list[CloudDetails] = []
    skipped: dict[str, str] = {}
    for name, result in zip(holders, results, strict=True):
        if isinstance(result, CloudDetails):
            details.append(result)
        elif isinstance(result, Unsupported):
            skipped[name] = _without(name, result.reason)
        else:
            errors[name] = _without(name, result.reason)
    return DiagnosticsView(device=device_id, details=details, errors=errors, skipped=skipped)


def _without(name: str, words: str) -> str:
    """The words without a leading ``name: `` (the caller names the cloud once)."""
    while words.startswith(f"{name}: "):
        words = words[len(name) + 2 :]
    return words


__all__ = ["gather_diagnostics"]
