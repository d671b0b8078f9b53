"""DeviceHQ (document 002) payloads: lenient wire models and their mapping into core types.

The document's samples are loose: numbers arrive as strings and strings as numbers, fields go
missing, the signal history spells its value ``rssii``, and the history routes put
``attributes`` at the top level while single resources wrap them in ``data``. Everything here
accepts that; whatever cannot be read becomes ``None`` rather than an error, because a
technician would rather see a device with an unknown signal than no device at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field

from fieldtui.core.models import BackendKind, Device, Location, Task, TaskState, TelemetrySample

#: A device whose last check-in is older than this counts as offline.
ONLINE_WINDOW = timedelta(minutes=15)

_UUID_RE = re.compile(r"^[0-9a-f]{32}$")
_NON_ALNUM = re.compile(r"[^0-9A-Za-z]")


# -- lenient scalars -------------------------------------------------------------------------
def _loose_str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).strip()
    return text or None


def _loose_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _loose_int(value: Any) -> int | None:
    number = _loose_float(value)
    return int(number) if number is not None else None


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 as the document writes it (``Z``, ``+00:00``, milliseconds); else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _loose_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"true", "1", "yes"}:
            return True
        if lowered in {"false", "0", "no"}:
            return False
    return None


LooseStr = Annotated[str | None, BeforeValidator(_loose_str)]
LooseFloat = Annotated[float | None, BeforeValidator(_loose_float)]
LooseInt = Annotated[int | None, BeforeValidator(_loose_int)]
LooseTime = Annotated[datetime | None, BeforeValidator(parse_time)]
LooseBool = Annotated[bool | None, BeforeValidator(_loose_bool)]


def _loose_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _loose_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id_list(value: Any) -> list[str]:
    """``config_ids`` come as a list, a comma-separated string, ``""`` or ``null``."""
    if isinstance(value, list):
        return [str(item) for item in value if item not in (None, "")]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


LooseList = Annotated[list[Any], BeforeValidator(_loose_list)]
LooseDict = Annotated[dict[str, Any], BeforeValidator(_loose_dict)]
IdList = Annotated[list[str], BeforeValidator(_id_list)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- public result models (what the typed DeviceHQ methods return) -----------------------------
class CheckIn(_Wire):
    timestamp: LooseTime = None
    action: LooseStr = None
    result: LooseStr = None
    ssl: LooseBool = None
    duration: LooseFloat = None


class SignalSample(_Wire):
    timestamp: LooseTime = None
    #: The document spells the value ``rssii``; ``rssi`` is accepted as well.
    rssi: LooseFloat = Field(default=None, validation_alias=AliasChoices("rssii", "rssi"))
    fer: LooseFloat = None


class NetworkUsage(_Wire):
    """Bytes moved on one interface (cell, ethernet, wifi) on one day."""

    day: str
    interface: str
    rx_bytes: LooseInt = None
    tx_bytes: LooseInt = None


class LoraNode(_Wire):
    node_addr: LooseStr = None
    dev_eui: LooseStr = None
    node_class: LooseStr = Field(default=None, validation_alias=AliasChoices("class", "node_class"))
    joined: LooseTime = None
    pkts_up: LooseInt = None
    pkts_down: LooseInt = None
    rss_i_avg: LooseFloat = None
    snr_avg: LooseFloat = None
    per: LooseFloat = None


class LoraInfo(_Wire):
    enabled: LooseBool = None
    running: LooseBool = None
    nodes: list[LoraNode] = Field(default_factory=list)
    link_statistics: LooseDict = Field(default_factory=dict)


class AppVersion(_Wire):
    id: LooseStr = None
    version: LooseStr = None
    description: LooseStr = None
    status: LooseStr = None


class AppConfig(_Wire):
    id: LooseStr = None
    version: LooseStr = None
    description: LooseStr = None
    created_at: LooseTime = None


class App(_Wire):
    id: str
    name: LooseStr = None
    platform: LooseStr = None
    status: LooseStr = None
    description: LooseStr = None
    versions: list[AppVersion] = Field(default_factory=list)
    app_configs: list[AppConfig] = Field(default_factory=list)


class InstalledApp(_Wire):
    id: LooseStr = None
    name: LooseStr = None
    version: LooseStr = None
    status: LooseStr = None
    type: LooseStr = None
    info: LooseStr = None


class Firmware(_Wire):
    id: str
    sub_type: LooseStr = None
    version: LooseStr = None
    model: LooseStr = None
    radio_module: LooseStr = None
    name: LooseStr = None
    upload_date: LooseTime = None


class DeviceConfiguration(_Wire):
    id: str
    name: LooseStr = None
    description: LooseStr = None
    model: LooseStr = None
    version: LooseStr = None


# -- wire-only models -------------------------------------------------------------------------
class _CellRadio(_Wire):
    rssi: LooseFloat = None
    provider: LooseStr = None


class _DeviceAttributes(_Wire):
    serial: LooseStr = None
    product: LooseStr = None
    group: LooseStr = None
    description: LooseStr = None
    firmware: LooseStr = None
    software_version: LooseStr = None
    location_description: Any = None
    last_checkin: LooseTime = None
    cell_radio: Annotated[_CellRadio, BeforeValidator(lambda v: v if isinstance(v, dict) else {})] = Field(
        default_factory=_CellRadio
    )
    enabled: LooseBool = None


class _TaskAttributes(_Wire):
    function: LooseStr = None
    type: LooseStr = None
    state: LooseStr = None
    status: LooseStr = None
    created_at: LooseTime = None
    updated_at: LooseTime = None
    attempts: LooseInt = None
    error: LooseStr = None
    message: LooseStr = None
    result: LooseStr = None
    return_code: LooseInt = None


# -- helpers ------------------------------------------------------------------------------------
def normalise_device_ref(device_id: str) -> str:
    """The path segment for a device: a 32-hex UUID cleaned as the server does, else the serial.

    The server strips whitespace and non-alphanumerics from UUIDs and ignores case; serials
    (``MTS-JP-003``) keep their dashes.
    """
    cleaned = _NON_ALNUM.sub("", device_id).lower()
    if _UUID_RE.match(cleaned):
        return cleaned
    return device_id.strip()


def resource(body: Any) -> Mapping[str, Any] | None:
    """The JSON:API resource object: ``data`` when present, else the body itself.

    History routes (signal_strength, check_ins, network, lora, configs) put ``id``, ``type``
    and ``attributes`` at the top level instead of under ``data``.
    """
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    if isinstance(data, Mapping):
        return data
    if "attributes" in body:
        return body
    return None


def resources(body: Any) -> list[Mapping[str, Any]] | None:
    """The resource objects of a list response (``data: [...]``), None when not that shape."""
    if not isinstance(body, Mapping):
        return None
    data = body.get("data")
    if isinstance(data, list):
        return [item for item in data if isinstance(item, Mapping)]
    return None


def attributes_of(item: Mapping[str, Any]) -> dict[str, Any]:
    attrs = item.get("attributes")
    return dict(attrs) if isinstance(attrs, Mapping) else {}


def location_from(value: Any) -> Location | None:
    """``location_description`` is documented as ``[lat, lon]``; a "lat, lon" string is accepted."""
    pair: list[Any] | None = None
    if isinstance(value, (list, tuple)) and len(value) == 2:
        pair = list(value)
    elif isinstance(value, str) and value.count(",") == 1:
        pair = value.split(",")
    if pair is None:
        return None
    lat, lon = _loose_float(pair[0]), _loose_float(pair[1])
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return Location(lat=lat, lon=lon)


def without_token(body: Any) -> dict[str, Any]:
    """The payload as received, minus the session token the device route echoes back."""
    if not isinstance(body, Mapping):
        return {}
    return {key: value for key, value in body.items() if key != "token"}


# -- mapping into core -------------------------------------------------------------------------
def device_from(body: Any, *, backend: str, now: datetime | None = None) -> Device | None:
    """A core Device from ``GET /devices/:id`` (or one item of ``GET /devices``); None if no shape."""
    item = resource(body)
    if item is None:
        return None
    attrs = _DeviceAttributes.model_validate(attributes_of(item))
    ident = attrs.serial or _loose_str(item.get("id"))
    if ident is None:
        return None
    now = now or datetime.now(UTC)
    online: bool | None = None
    if attrs.last_checkin is not None:
        online = now - attrs.last_checkin < ONLINE_WINDOW
    raw = without_token(body) if isinstance(body, Mapping) and "data" in body else {"data": dict(item)}
    return Device(
        id=ident,
        backend=backend,
        kind=BackendKind.DEVICEHQ,
        name=attrs.description or ident,
        model=attrs.product,
        firmware=attrs.firmware or attrs.software_version,
        online=online,
        last_seen=attrs.last_checkin,
        rssi=attrs.cell_radio.rssi,
        location=location_from(attrs.location_description),
        group=attrs.group,
        raw=raw,
    )


#: Document 002: a task is ``queued`` until the device picks it up on a check-in; "If the task
#: is in pending state, this may cause it to fail if the device is currently processing the
#: task" (DELETE): ``pending`` is a task the device is working on, so it shows as running.
_STATE_WORDS: dict[str, TaskState] = {
    "queued": TaskState.QUEUED,
    "pending": TaskState.RUNNING,
    "new": TaskState.QUEUED,
    "created": TaskState.QUEUED,
    "scheduled": TaskState.QUEUED,
    "waiting": TaskState.QUEUED,
    "in progress": TaskState.RUNNING,
    "running": TaskState.RUNNING,
    "processing": TaskState.RUNNING,
    "started": TaskState.RUNNING,
    "sent": TaskState.RUNNING,
    "completed": TaskState.DONE,
    "complete": TaskState.DONE,
    "success": TaskState.DONE,
    "succeeded": TaskState.DONE,
    "successful": TaskState.DONE,
    "done": TaskState.DONE,
    "finished": TaskState.DONE,
    "failed": TaskState.FAILED,
    "failure": TaskState.FAILED,
    "error": TaskState.FAILED,
    "errored": TaskState.FAILED,
    "timeout": TaskState.FAILED,
    "timed out": TaskState.FAILED,
    "cancelled": TaskState.CANCELLED,
    "canceled": TaskState.CANCELLED,
    "cancel": TaskState.CANCELLED,
}


def task_state(raw_state: str | None) -> TaskState:
    """The vendor's state word as a core state. A task without one was just created: queued.

    Unknown words count as queued (unfinished) rather than pretending the task ended.
    """
    if not raw_state:
        return TaskState.QUEUED
    word = raw_state.strip().lower().replace("_", " ").replace("-", " ")
    return _STATE_WORDS.get(word, TaskState.QUEUED)


def task_from(item: Mapping[str, Any], *, backend: str, device: str) -> Task | None:
    task_id = _loose_str(item.get("id"))
    if task_id is None:
        return None
    attrs_dict = attributes_of(item)
    attrs = _TaskAttributes.model_validate(attrs_dict)
    raw_state = attrs.state or attrs.status or ""
    return Task(
        backend=backend,
        device=device,
        id=task_id,
        type=attrs.function or attrs.type or "unknown",
        state=task_state(raw_state),
        raw_state=raw_state,
        attempts=attrs.attempts,
        created=attrs.created_at,
        updated=attrs.updated_at,
        detail=attrs.error or attrs.message or attrs.result or _return_code(attrs.return_code),
        raw=dict(item),
    )


def _return_code(code: int | None) -> str | None:
    return None if code in (None, 0) else f"return code {code}"


def signal_samples_from(body: Any) -> list[SignalSample] | None:
    item = resource(body)
    if item is None:
        return None
    raw = attributes_of(item).get("signal_strength")
    if not isinstance(raw, list):
        return None
    samples = []
    for entry in raw:
        if isinstance(entry, Mapping):
            samples.append(SignalSample.model_validate(dict(entry)))
    return samples


def check_ins_from(body: Any) -> list[CheckIn] | None:
    item = resource(body)
    if item is None:
        return None
    raw = attributes_of(item).get("check_ins")
    if not isinstance(raw, list):
        return None
    return [CheckIn.model_validate(dict(entry)) for entry in raw if isinstance(entry, Mapping)]


def network_from(body: Any) -> list[NetworkUsage] | None:
    """``network_usages`` is a list of ``{day: {interface: {rx_bytes, tx_bytes}}}`` objects."""
    item = resource(body)
    if item is None:
        return None
    raw = attributes_of(item).get("network_usages")
    if not isinstance(raw, list):
        return None
    usages: list[NetworkUsage] = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            continue
        for day, interfaces in entry.items():
            if not isinstance(interfaces, Mapping):
                continue
            for interface, counters in interfaces.items():
                if isinstance(counters, Mapping):
                    usages.append(
                        NetworkUsage(
                            day=str(day),
                            interface=str(interface),
                            rx_bytes=counters.get("rx_bytes"),
                            tx_bytes=counters.get("tx_bytes"),
                        )
                    )
    return usages


def lora_from(body: Any) -> LoraInfo | None:
    item = resource(body)
    if item is None:
        return None
    raw = attributes_of(item).get("lora")
    if raw is None:
        return LoraInfo()
    if not isinstance(raw, Mapping):
        return None
    nodes = [
        LoraNode.model_validate(dict(n)) for n in _loose_list(raw.get("nodes")) if isinstance(n, Mapping)
    ]
    return LoraInfo(
        enabled=raw.get("enabled"),
        running=raw.get("running"),
        nodes=nodes,
        link_statistics=raw.get("link_statistics"),
    )


def installed_apps_from(body: Any) -> list[InstalledApp] | None:
    item = resource(body)
    if item is None:
        return None
    raw = attributes_of(item).get("apps", attributes_of(item).get("active_apps"))
    if raw is None:
        return []
    if not isinstance(raw, list):
        return None
    return [InstalledApp.model_validate(dict(app)) for app in raw if isinstance(app, Mapping)]


def _flatten(item: Mapping[str, Any]) -> dict[str, Any] | None:
    item_id = _loose_str(item.get("id"))
    if item_id is None:
        return None
    return {**attributes_of(item), "id": item_id}


def app_from(body: Any) -> App | None:
    item = resource(body)
    flat = _flatten(item) if item is not None else None
    if flat is None:
        return None
    flat["versions"] = [v for v in _loose_list(flat.get("versions")) if isinstance(v, Mapping)]
    flat["app_configs"] = [c for c in _loose_list(flat.get("app_configs")) if isinstance(c, Mapping)]
    return App.model_validate(flat)


def listed(body: Any, model: type[App] | type[Firmware] | type[DeviceConfiguration]) -> list[Any] | None:
    items = resources(body)
    if items is None:
        return None
    out = []
    for item in items:
        flat = _flatten(item)
        if flat is None:
            continue
        if model is App:
            flat.pop("versions", None)
            flat.pop("app_configs", None)
        out.append(model.model_validate(flat))
    return out


def signal_metrics(sample: SignalSample) -> dict[str, float | int | str | bool]:
    metrics: dict[str, float | int | str | bool] = {}
    if sample.rssi is not None:
        metrics["rssi"] = sample.rssi
    if sample.fer is not None:
        metrics["fer"] = sample.fer
    return metrics


def check_in_metrics(check_in: CheckIn) -> dict[str, float | int | str | bool]:
    metrics: dict[str, float | int | str | bool] = {"check_in": True}
    if check_in.action is not None:
        metrics["check_in_action"] = check_in.action
    if check_in.result is not None:
        metrics["check_in_result"] = check_in.result
    if check_in.ssl is not None:
        metrics["check_in_ssl"] = check_in.ssl
    if check_in.duration is not None:
        metrics["check_in_duration"] = check_in.duration
    return metrics


def sample(device: str, backend: str, timestamp: datetime, metrics: dict[str, Any]) -> TelemetrySample:
    return TelemetrySample(device=device, backend=backend, timestamp=timestamp, metrics=metrics)
