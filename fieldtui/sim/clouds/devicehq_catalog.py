"""DeviceHQ simulator: the account's apps, firmwares and device configurations.

In the real service these are uploaded through the web portal; the API only lists them and
refers to them by 24-hex (MongoDB ObjectId) ids. The simulator seeds a handful of each from
the fleet seed, so the same seed gives the same ids in every run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from fieldtui.sim.clouds.devicehq_wire import iso_offset

#: 2021-05-21, about when the document's samples were uploaded.
_CATALOG_EPOCH = 1_621_605_335.0
#: Device families (the product name up to its first dash) and their cell radio modules.
FAMILIES = ("MTCDT", "MTCAP", "MTR")
_RADIO_MODULES = ("HE910-D", "LE910-NA1", "LE910C4-NF")
_DEVICE_FW_VERSIONS = ("5.3.0", "5.3.3", "6.0.1")
_RADIO_FW_VERSIONS = ("12.00.024", "20.00.525", "25.30.228")
_PRODUCTS = ("MTCDT-H5-210L", "MTCDT-H5-210A", "MTCAP-LEU1-868-001L", "MTR-H5", "MTR-G3")


def family(product: str | None) -> str:
    return (product or "").split("-", 1)[0]


class ObjectIds:
    """MongoDB-style ids: 4 bytes of time, a per-process salt, a counter."""

    def __init__(self, rng: random.Random) -> None:
        self._salt = rng.getrandbits(40)
        self._counter = rng.getrandbits(20)

    def next(self, ts: float) -> str:
        self._counter = (self._counter + 1) & 0xFFFFFF
        return f"{int(ts) & 0xFFFFFFFF:08x}{self._salt:010x}{self._counter:06x}"


@dataclass(frozen=True, slots=True)
class AppVersion:
    id: str
    version: str
    description: str


@dataclass(frozen=True, slots=True)
class AppConfig:
    id: str
    version: str
    description: str
    created_at: float | None


@dataclass(frozen=True, slots=True)
class App:
    id: str
    name: str
    platform: str
    description: str | None
    versions: tuple[AppVersion, ...]  # oldest first
    configs: tuple[AppConfig, ...]

    @property
    def latest(self) -> str:
        return self.versions[-1].version

    def version(self, wanted: str) -> AppVersion | None:
        return next((v for v in self.versions if v.version == wanted), None)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "type": "apps", "attributes": {"name": self.name}}

    def detail(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "apps",
            "attributes": {
                "name": self.name,
                "versions": [
                    {"id": v.id, "version": v.version, "description": v.description, "status": "Active"}
                    for v in self.versions
                ],
                "app_configs": [
                    {
                        "id": c.id,
                        "version": c.version,
                        "created_at": None if c.created_at is None else iso_offset(c.created_at),
                        "description": c.description,
                    }
                    for c in self.configs
                ],
                "platform": self.platform,
                "status": "Active",
                "description": self.description,
            },
        }


@dataclass(frozen=True, slots=True)
class Firmware:
    id: str
    sub_type: str  # "device" | "cell_radio"
    uploaded: float
    version: str
    model: str
    radio_module: str | None

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "firmwares",
            "attributes": {
                "sub_type": self.sub_type,
                "upload_date": iso_offset(self.uploaded),
                "version": self.version,
                "model": self.model,
                "radio_module": self.radio_module,
            },
        }


@dataclass(frozen=True, slots=True)
class DeviceConfiguration:
    id: str
    name: str
    description: str
    model: str  # a full product name, as in the document's sample

    def resource(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "device_configurations",
            "attributes": {"name": self.name, "description": self.description, "model": self.model},
        }


@dataclass(slots=True)
class Catalog:
    apps: dict[str, App] = field(default_factory=dict)
    device_firmwares: dict[str, Firmware] = field(default_factory=dict)
    radio_firmwares: dict[str, Firmware] = field(default_factory=dict)
    configurations: dict[str, DeviceConfiguration] = field(default_factory=dict)

    def app_of_config(self, config_id: str) -> App | None:
        return next((a for a in self.apps.values() if any(c.id == config_id for c in a.configs)), None)

    def configuration_for(self, product: str | None, pick: int) -> DeviceConfiguration | None:
        """One of the configurations made for ``product``'s family (``pick`` chooses which)."""
        fits = [c for c in self.configurations.values() if family(c.model) == family(product)]
        return fits[pick % len(fits)] if fits else None


def _semver(rng: random.Random) -> str:
    return f"{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"


def build_catalog(seed: int) -> Catalog:
    rng = random.Random(f"devicehq-catalog:{seed}")
    ids = ObjectIds(rng)
    catalog = Catalog()
    t = _CATALOG_EPOCH
    for n in range(6):
        t += rng.uniform(3_600, 86_400)
        app_id = ids.next(t)
        versions = sorted(
            {_semver(rng) for _ in range(rng.randint(1, 4))}, key=lambda v: tuple(map(int, v.split(".")))
        )
        app_versions = tuple(AppVersion(ids.next(t), v, f"description for version {v}") for v in versions)
        configs: list[AppConfig] = []
        for _ in range(rng.randint(1, 3) if n % 3 else 0):
            v = _semver(rng)
            configs.append(
                AppConfig(
                    ids.next(t),
                    v,
                    f"description for app config version {v}",
                    None if rng.random() < 0.3 else t + rng.uniform(0, 3_600),
                )
            )
        app = App(
            id=app_id,
            name=f"app_{rng.randint(10_000_000, 99_999_999)}",
            platform=rng.choice(("python", "node")),
            description=None if n % 2 else f"Custom app number {n + 1}",
            versions=app_versions,
            configs=tuple(configs),
        )
        catalog.apps[app.id] = app
    for fam in FAMILIES:
        for version in _DEVICE_FW_VERSIONS:
            t += rng.uniform(60, 600)
            fw = Firmware(ids.next(t), "device", t, version, fam, None)
            catalog.device_firmwares[fw.id] = fw
        for module, version in zip(_RADIO_MODULES, _RADIO_FW_VERSIONS, strict=True):
            t += rng.uniform(60, 600)
            fw = Firmware(ids.next(t), "cell_radio", t, version, fam, module)
            catalog.radio_firmwares[fw.id] = fw
    for product in (*_PRODUCTS, "MTCDT-H5-210L", "MTR-H5"):
        t += rng.uniform(60, 600)
        number = rng.randint(10_000, 99_999)
        config = DeviceConfiguration(
            ids.next(t), f"config_{number}", f"description for config {number}", product
        )
        catalog.configurations[config.id] = config
    return catalog
