"""The ``fieldtui`` entry point: parse arguments, dispatch to a command module, map errors to exit codes.

Kept light on purpose: a quick command such as ``status`` must not pay for Textual (or anything
else it does not use). Command modules are imported only when chosen.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fieldtui import __version__
from fieldtui.core.errors import ConfigError, DeviceNotFound, FieldtuiError, NoBackendReachable
from fieldtui.core.text import strip_controls

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_UNREACHABLE = 4

INSTALLATION_STATUSES = ("new", "installed", "uninstalled", "quarantine", "retired")

#: command name -> module under fieldtui.commands that implements ``run(args) -> int``.
COMMAND_MODULES: dict[str, str] = {
    "app": "app",
    "demo": "demo",
    "sim": "sim",
    "status": "read",
    "watch": "read",
    "tasks": "read",
    "set-status": "write",
    "move": "write",
    "outbox": "outbox",
    "login": "account",
    "info": "account",
}


def _say(error: BaseException) -> None:
    # An error may quote a cloud's words, which must not reach the terminal as escape sequences.
    print(f"fieldtui: {strip_controls(error)}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


#: The read commands, which must start quickly: ``main`` builds only the one asked for.
_QUICK_COMMANDS: dict[str, str] = {
    "status": "show one device across every cloud",
    "watch": "stream a device's telemetry (NDJSON with --json) until Ctrl-C",
    "tasks": "list a device's tasks",
}
#: Global options that take a value (as the next argument or after ``=``).
_VALUE_OPTIONS = ("--config", "--profile")
_FLAG_OPTIONS = ("--offline", "--read-only")


def _add_read_command(sub: argparse._SubParsersAction[_Parser], name: str, help_text: str) -> None:
    cmd = sub.add_parser(name, help=help_text)
    cmd.add_argument("device", metavar="DEVICE")
    _add_json(cmd)


def _quick_command(argv: Sequence[str]) -> str | None:
    """The read command ``argv`` names, when it can be told without argparse (else None: any
    option this does not know exactly, an abbreviation say, leaves it to the full parser)."""
    expect_value = False
    for arg in argv:
        if expect_value:
            expect_value = False
        elif arg in _VALUE_OPTIONS:
            expect_value = True
        elif arg in _FLAG_OPTIONS or arg.startswith(tuple(f"{o}=" for o in _VALUE_OPTIONS)):
            continue
        else:
            return arg if arg in _QUICK_COMMANDS else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, the global options and that one command (a quick
    command need not build the other eleven parsers: the usage and errors are the same)."""
    parser = _Parser(
        prog="fieldtui",
        description="Look up, watch and service IoT devices across five device clouds.",
    )
    parser.add_argument("--version", action="version", version=f"fieldtui {__version__}")
    parser.add_argument("--config", metavar="PATH", help="config file (env FIELDTUI_CONFIG)")
    parser.add_argument("--profile", metavar="NAME", help="profile to use (env FIELDTUI_PROFILE)")
    parser.add_argument("--offline", action="store_true", help="send nothing; serve reads from the cache")
    parser.add_argument("--read-only", action="store_true", help="refuse every change")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if only in _QUICK_COMMANDS:
        _add_read_command(sub, only, _QUICK_COMMANDS[only])
        return parser

    demo = sub.add_parser("demo", help="start the simulator and open the app against it")
    demo.add_argument("--fleet-size", type=int, default=200)
    demo.add_argument("--seed", type=int, default=1)

    sim = sub.add_parser("sim", help="run the simulated clouds in the foreground")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8750, help="HTTP port (0: any free port)")
    sim.add_argument("--mqtt-port", type=int, default=18830, help="MQTT broker port (0: any free port)")
    sim.add_argument("--fleet-size", type=int, default=200)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--write-config", metavar="PATH", help="write a config for this simulator (and PATH.env)"
    )
    sim.add_argument(
        "--telemetry-interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between telemetry messages of each simulated MQTT device",
    )
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="BACKEND:FAULT[=VALUE]",
        help="inject a fault at start, e.g. things:unreachable, devicehq:latency=0.5, "
        "sensors:error_rate=0.2, fleet:drop_rate=0.1, gateways:malformed (repeatable)",
    )

    for name, help_text in _QUICK_COMMANDS.items():
        _add_read_command(sub, name, help_text)

    set_status = sub.add_parser("set-status", help="set a device's installation status (queued first)")
    set_status.add_argument("device", metavar="DEVICE")
    set_status.add_argument("status", choices=INSTALLATION_STATUSES)
    set_status.add_argument("--backend", metavar="NAME", help="the backend that knows the device")
    _add_json(set_status)

    move = sub.add_parser("move", help="move a device to a group (queued first)")
    move.add_argument("device", metavar="DEVICE")
    move.add_argument("group", metavar="GROUP")
    move.add_argument("--backend", metavar="NAME", help="the backend that knows the device")
    _add_json(move)

    outbox = sub.add_parser("outbox", help="list, sync, retry or drop queued changes")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", parser_class=_Parser)
    _add_json(outbox_sub.add_parser("list", help="every queued, failed and recent action"))
    _add_json(outbox_sub.add_parser("sync", help="send what can be sent now"))
    retry = outbox_sub.add_parser("retry", help="queue a failed or conflicting action again")
    retry.add_argument("action_id", metavar="ID")
    _add_json(retry)
    drop = outbox_sub.add_parser("drop", help="discard an action that has not been sent")
    drop.add_argument("action_id", metavar="ID")
    drop.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    _add_json(drop)

    login = sub.add_parser("login", help="store a backend's secret in the system keyring")
    login.add_argument("backend", metavar="BACKEND")

    info = sub.add_parser("info", help="show paths, keyring backend and configured backends")
    _add_json(info)
    return parser


def _run(args: argparse.Namespace) -> int:
    command = args.command or "app"
    if command == "outbox" and not getattr(args, "outbox_command", None):
        args.outbox_command = "list"
    module_name = COMMAND_MODULES[command]
    try:
        module = importlib.import_module(f"fieldtui.commands.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"fieldtui.commands.{module_name}":
            raise
        print(f"fieldtui {command}: not yet available in this version", file=sys.stderr)
        return EXIT_USAGE
    result: int = module.run(args)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_quick_command(arguments)).parse_args(arguments)
    from fieldtui.logging_setup import configure_logging

    configure_logging()
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except ConfigError as exc:
        _say(exc)
        return EXIT_USAGE
    except DeviceNotFound as exc:
        _say(exc)
        return EXIT_NOT_FOUND
    except NoBackendReachable as exc:
        _say(exc)
        return EXIT_UNREACHABLE
    except FieldtuiError as exc:
        _say(exc)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        from fieldtui.commands._errors import report_unexpected

        return report_unexpected(exc)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
