"""DeviceHQ gateway diagnostics (document 002): network usage, LoRa, logs, configs and apps.

What a technician reads at a gateway that misbehaves, gathered into one snapshot of plain JSON
sections (the port's ``CloudDetails``):

- ``network``: per interface (``cell``, ``ethernet``, ``wifi``: three ``GET .../network?type=``)
  the total bytes received and sent over the window the server chose (10 days by default) and
  the bytes of each day. The document shows an interface absent on a day as missing: those days
  count nothing.
- ``lora``: the LoRa card (``GET .../lora``): whether it is enabled and running, its link
  statistics and each node's packets, signal and SNR; ``{"card": false}`` when the gateway has
  none (the document answers an empty ``lora`` object then).
- ``log`` and ``config``: the last uploaded log archive and configuration file (``GET .../logs``,
  ``GET .../configs``): its description, md5 sum, upload time or name, and the download link the
  server gives in ``links.self``; ``{"uploaded": false}`` when nothing was uploaded in the window.
- ``apps``: the apps installed on the gateway (``GET /devices/{id}/apps``).

Each section is read on its own: one route that fails (a model without the route, a server that
words its answer otherwise) shows as that section's ``{"error": ...}`` while the others are shown.
Only when every route fails is the first error raised (the device is unknown, the cloud cannot be
reached), so the caller tells "no diagnostics" from "some".

Readings beyond the document's samples: the log and config samples put ``links`` at the top
level; a JSON:API server puts them under ``data`` (``data.links.self``), and some give the link
inside the file object (``url`` / ``link`` / ``download_url``): all are accepted. MultiTech's
public route list (multitech.net, DeviceHQ "Account API – Routes") names the same routes and
says the history routes look back 30 days where document 002 says 10 by default; neither shows
another body, so no window is assumed in what a technician is told.

Downloading. The link points at ``/api/v2/files/{id}`` on the API, which wants the session, so
a link pasted into a browser may be refused: :func:`download_upload` fetches the file with the
session, and only from the configured API's own scheme and host (the token never leaves it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from fieldtui.connectors import _wire_devicehq as wire
from fieldtui.core.errors import BackendError, InvalidResponse, NotFound, Rejected

if TYPE_CHECKING:
    from fieldtui.connectors.devicehq import DeviceHQConnector

INTERFACES = ("cell", "ethernet", "wifi")
_LINK_KEYS = ("url", "link", "download_url", "href")


def uploaded_file(body: Any, key: str) -> dict[str, Any] | None:
    """The ``log`` / ``config`` object of a logs or configs answer, with its download link;
    ``{"uploaded": False}`` when the server has none; None when the body is not that shape."""
    item = wire.resource(body)
    if item is None:
        return None
    attributes = wire.attributes_of(item)
    found = attributes.get(key)
    if found is None:
        return {"uploaded": False}
    if not isinstance(found, Mapping):
        return None
    out: dict[str, Any] = {"uploaded": True}
    out.update({str(k): v for k, v in found.items() if isinstance(v, str | int | float | bool) or v is None})
    link = (
        _link(body)
        or _link(item)
        or next((found[k] for k in _LINK_KEYS if isinstance(found.get(k), str)), None)
    )
    out["download"] = link
    return out


def _link(holder: Any) -> str | None:
    links = holder.get("links") if isinstance(holder, Mapping) else None
    if isinstance(links, Mapping):
        self_link = links.get("self")
        if isinstance(self_link, str):
            return self_link
        if isinstance(self_link, Mapping) and isinstance(self_link.get("href"), str):
            return str(self_link["href"])
    return None


def network_section(by_interface: Mapping[str, list[wire.NetworkUsage]]) -> dict[str, Any]:
    """Per interface: total rx/tx bytes and each day's, oldest day first."""
    section: dict[str, Any] = {}
    for interface, usages in by_interface.items():
        days = sorted(
            (u for u in usages if u.interface == interface),
            key=lambda u: u.day,
        )
        section[interface] = {
            "rx_bytes": sum(u.rx_bytes or 0 for u in days),
            "tx_bytes": sum(u.tx_bytes or 0 for u in days),
            "days": [{"day": u.day, "rx_bytes": u.rx_bytes, "tx_bytes": u.tx_bytes} for u in days],
        }
    return section


def lora_section(info: wire.LoraInfo) -> dict[str, Any]:
    if not info.nodes and not info.link_statistics and info.enabled is None and info.running is None:
        return {"card": False}
    return {
        "card": True,
        "enabled": info.enabled,
        "running": info.running,
        "link_statistics": dict(info.link_statistics),
        "nodes": [node.model_dump(mode="json", by_alias=False) for node in info.nodes],
    }


async def gateway_details(connector: DeviceHQConnector, device_id: str) -> dict[str, Any]:
    """Every diagnostics section, each read concurrently and on its own (see the module doc)."""

    async def network() -> dict[str, Any]:
        results = await asyncio.gather(*(connector.network(device_id, i) for i in INTERFACES))
        return network_section(dict(zip(INTERFACES, results, strict=True)))

    async def lora() -> dict[str, Any]:
        return lora_section(await connector.lora(device_id))

    async def apps() -> list[dict[str, Any]]:
        return [app.model_dump(mode="json") for app in await connector.device_apps(device_id)]

    # The uploads and apps first: what a technician opens most; the daily byte counts last.
    names = ("log", "config", "apps", "lora", "network")
    results = await asyncio.gather(
        connector.uploaded(device_id, "logs", "log"),
        connector.uploaded(device_id, "configs", "config"),
        apps(),
        lora(),
        network(),
        return_exceptions=True,
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures:
        if not isinstance(failure, BackendError):
            raise failure
    if len(failures) == len(results):
        raise failures[0]
    sections: dict[str, Any] = {}
    for name, result in zip(names, results, strict=True):
        if isinstance(result, BackendError):
            sections[name] = {"error": result.reason}
        else:
            sections[name] = result
    return sections


#: What can be downloaded: kind -> (route, attribute).
UPLOADS = {"log": ("logs", "log"), "config": ("configs", "config")}
#: A log archive larger than this is refused rather than held in memory.
MAX_DOWNLOAD = 64 * 1024 * 1024
_FILENAME = re.compile(r'filename="?([^";]+)"?')


def api_path(link: str, api_url: str) -> str | None:
    """``link`` as a path under the configured API URL (``/files/ID``), None when it points
    anywhere else: the session token is sent to the API only, never to another host."""
    target, api = urlsplit(link), urlsplit(api_url)
    base = api.path.rstrip("/")
    if (target.scheme, target.netloc.lower()) != (api.scheme, api.netloc.lower()):
        return None
    if not target.path.startswith(base + "/"):
        return None
    return target.path[len(base) :] + (f"?{target.query}" if target.query else "")


def file_name(disposition: str | None, device_id: str, kind: str) -> str:
    """The server's file name (its last path part, printable), else ``SERIAL-KIND.tar.gz``."""
    match = _FILENAME.search(disposition or "")
    name = match.group(1).replace("\\", "/").rsplit("/", 1)[-1].strip() if match else ""
    name = "".join(c for c in name if c.isprintable())
    if not name or name in (".", ".."):
        name = f"{device_id}-{kind}.tar.gz"
    return name


async def download_upload(connector: DeviceHQConnector, device_id: str, kind: str) -> tuple[str, bytes]:
    """The last uploaded log archive or configuration file of the gateway: (file name, bytes),
    fetched from the download link with the session (the link must be on the API's host)."""
    if kind not in UPLOADS:
        raise Rejected(f"can download 'log' or 'config', not {kind!r}", backend=connector.name)
    route, key = UPLOADS[kind]
    found = await connector.uploaded(device_id, route, key)
    if not found.get("uploaded"):
        raise NotFound(
            f"{device_id} has uploaded no {kind} lately (the server looks back 10 to 30 days)",
            backend=connector.name,
            hint="the gateway uploads it at a check-in; try again after its next one",
        )
    link = found.get("download")
    if not isinstance(link, str) or not link:
        raise InvalidResponse(
            f"the {kind} upload of {device_id} has no download link", backend=connector.name
        )
    path = api_path(link, connector.api_url)
    if path is None:
        raise Rejected(
            f"the {kind} link points outside the DeviceHQ API ({link}); fieldtui sends its session only there",
            backend=connector.name,
            hint="open the link in a browser signed in to DeviceHQ",
        )
    response = await connector.get_file(path)
    content = response.content
    if len(content) > MAX_DOWNLOAD:
        raise Rejected(
            f"the {kind} archive is larger than {MAX_DOWNLOAD // 2**20} MB", backend=connector.name
        )
    return file_name(response.headers.get("content-disposition"), device_id, kind), content


__all__ = [
    "INTERFACES",
    "UPLOADS",
    "api_path",
    "download_upload",
    "file_name",
    "gateway_details",
    "lora_section",
    "network_section",
    "uploaded_file",
]
