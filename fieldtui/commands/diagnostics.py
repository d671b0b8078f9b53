"""``fieldtui diagnostics DEVICE [--backend NAME] [--ask-device] [--json]``: what each of the
device's clouds holds beyond its record, section by section; ``--download log|config
[--output PATH]`` saves a gateway's last uploaded log archive or configuration file.

A gateway's network usage per interface, LoRa card, last log and config uploads (with the
download links, printed whole so they can be copied) and apps; an MQTT device's configuration
as the cloud holds it, its licences, space info and firmware (``--ask-device`` also asks the
device itself for its configuration: document 003's ``.../config`` request); a fleet device's
attributes; a sensor's task queue and current configuration. A read: sync mode none, nothing
queued. Each cloud that could not be read is one line on stderr, ``<cloud>: <what happened>
(<what to do>)``; nothing read at all exits 4 (unreachable) or 2 (nothing more kept, offline).

The download links DeviceHQ gives need its API session, so a link copied into a browser may
be refused: ``--download`` fetches the file through fieldtui's session (only from the API's
own host) and never overwrites a file.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from fieldtui.commands import _output as out
from fieldtui.commands._errors import EXIT_OK, EXIT_UNREACHABLE
from fieldtui.commands._session import session, warn
from fieldtui.config import LoadedConfig, load_config
from fieldtui.core.errors import BackendError, ConfigError, Unsupported
from fieldtui.core.outline import outline, title
from fieldtui.service.api import CloudDetails, DiagnosticsView, DownloadedFile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("device", metavar="DEVICE")
    parser.add_argument("--backend", metavar="NAME", help="only this cloud's details")
    parser.add_argument(
        "--ask-device",
        action="store_true",
        help="also ask the device itself for its configuration (MQTT; it must be online)",
    )
    parser.add_argument(
        "--download",
        choices=("log", "config"),
        help="save the gateway's last uploaded log archive or configuration file",
    )
    parser.add_argument(
        "--output", metavar="PATH", help="where --download saves it (a file or a directory; default: here)"
    )


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.config, args.profile)
    if args.download:
        return _download(loaded, args)
    if args.output:
        raise ConfigError("--output goes with --download", hint="add --download log or --download config")

    async def read() -> tuple[DiagnosticsView, dict[str, CloudDetails | str]]:
        asked: dict[str, CloudDetails | str] = {}
        async with session(loaded, offline=bool(args.offline)) as service:
            view = await service.diagnostics(args.device, backend=args.backend)
            if args.ask_device:
                for details in view.details:
                    try:
                        asked[details.backend] = await service.request_config(view.device, details.backend)
                    except Unsupported:
                        continue
                    except BackendError as exc:
                        asked[details.backend] = exc.reason
        return view, asked

    view, asked = asyncio.run(read())
    if args.json:
        print(out.dumps(diagnostics_json(view, asked), indent=2))
    else:
        for line in diagnostics_lines(view, asked):
            print(_indented(line))
    for name, why in view.errors.items():
        warn(f"{name}: {why}")
    for name, answer in asked.items():
        if isinstance(answer, str):
            warn(f"{name}: the device did not give its configuration: {answer}")
    if not view.details:
        if view.errors:
            return EXIT_UNREACHABLE
        reasons = "; ".join(f"{name}: {why}" for name, why in view.skipped.items())
        raise Unsupported(f"no diagnostics for {view.device}: {reasons or 'no cloud holds more'}")
    return EXIT_OK


def _download(loaded: LoadedConfig, args: argparse.Namespace) -> int:
    async def fetch() -> DownloadedFile:
        async with session(loaded, offline=bool(args.offline)) as service:
            if args.backend is not None:
                if service.backend(args.backend) is None:
                    names = ", ".join(info.name for info in service.backends())
                    raise ConfigError(f"no backend named {args.backend!r} in this profile; allowed: {names}")
                clouds = [args.backend]
            else:
                view = await service.device(args.device)
                clouds = list(dict.fromkeys(source.backend for source in view.sources))
            reasons: list[str] = []
            for name in clouds:
                try:
                    return await service.download(args.device, name, args.download)
                except Unsupported as exc:
                    reasons.append(
                        f"{name}: {exc.reason}" if not exc.reason.startswith(f"{name}: ") else exc.reason
                    )
            raise Unsupported(f"no cloud of {args.device} keeps its {args.download}: {'; '.join(reasons)}")

    downloaded = asyncio.run(fetch())
    target = Path(args.output) if args.output else Path.cwd()
    if target.is_dir():
        target = target / downloaded.name
    try:
        with target.open("xb") as handle:
            handle.write(downloaded.content)
    except FileExistsError:
        raise ConfigError(
            f"{target} exists: nothing was overwritten", hint="choose another --output"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror}", hint="choose another --output") from None
    if args.json:
        document = {"device": downloaded.device, "backend": downloaded.backend, "kind": args.download}
        document.update(file=str(target), bytes=len(downloaded.content))
        print(out.dumps(document))
    else:
        print(
            out.clean_line(f"{downloaded.backend}: saved {args.download} of {downloaded.device} to {target}")
        )
        print(f"{len(downloaded.content)} bytes")
    return EXIT_OK


def _indented(line: str) -> str:
    stripped = line.lstrip(" ")
    return line[: len(line) - len(stripped)] + out.clean_line(stripped)


def diagnostics_json(
    view: DiagnosticsView, asked: dict[str, CloudDetails | str] | None = None
) -> dict[str, Any]:
    clouds: dict[str, Any] = {}
    for details in view.details:
        clouds[details.backend] = dict(details.sections)
    for name, answer in (asked or {}).items():
        if isinstance(answer, CloudDetails):
            clouds.setdefault(name, {})["device_config"] = answer.sections.get("config")
    return {
        "device": view.device,
        "clouds": clouds,
        "errors": view.errors,
        "skipped": view.skipped,
        "device_config_errors": {n: a for n, a in (asked or {}).items() if isinstance(a, str)},
    }


def diagnostics_lines(view: DiagnosticsView, asked: dict[str, CloudDetails | str] | None = None) -> list[str]:
    lines: list[str] = [view.device]
    for details in view.details:
        lines.append(f"{details.backend}:")
        sections: dict[str, Any] = dict(details.sections)
        answer = (asked or {}).get(details.backend)
        if isinstance(answer, CloudDetails):
            sections["device_config"] = answer.sections.get("config")
        for name, value in sections.items():
            lines.append(f"  {title(name)}")
            lines.extend("    " + line.render() for line in outline(value))
    for name, why in view.skipped.items():
        lines.append(f"{name}: {why}")
    return lines


__all__ = ["add_arguments", "diagnostics_json", "diagnostics_lines", "run"]
