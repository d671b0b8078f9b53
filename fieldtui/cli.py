"""The ``fieldtui`` entry point: parse arguments, dispatch to a command module, map errors to exit codes.

Kept light on purpose: a quick command such as ``status`` must not pay for Textual (or anything
else it does not use). Command modules are imported only when chosen.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from fieldtui import __version__
from fieldtui.commands._errors import (
    EXIT_FAILURE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    print_json,
    report,
    report_unexpected,
)
from fieldtui.core.errors import FieldtuiError

__all__ = ["EXIT_FAILURE", "EXIT_NOT_FOUND", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE", "main"]

INSTALLATION_STATUSES = ("new", "installed", "uninstalled", "quarantine", "retired")

#: command name -> module under fieldtui.commands that implements ``run(args) -> int``.
COMMAND_MODULES: dict[str, str] = {
    "app": "app",
    "demo": "demo",
    "sim": "sim",
    "status": "read",
    "watch": "read",
    "tasks": "read",
    "history": "read",
    "set-status": "write",
    "move": "write",
    "outbox": "outbox",
    "devices": "devices",
    "groups": "groups",
    "alerts": "alerts",
    "diagnostics": "diagnostics",
    "task": "changes",
    "command": "changes",
    "group": "changes",
    "edit": "changes",
    "device": "device_records",
    "login": "account",
    "info": "account",
}


class _Parser(argparse.ArgumentParser):
    #: Set by ``main`` when ``--json`` is on the command line: a script then gets usage errors
    #: as JSON on stdout too.
    json_errors = False

    def error(self, message: str) -> None:  # type: ignore[override]
        if self.json_errors:
            error = {"code": "usage", "message": f"{self.prog}: {message}", "hint": None, "backend": None}
            error["hint"] = f"see `{self.prog} --help`"
            print_json({"error": error})
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


#: The read commands, which must start quickly: ``main`` builds only the one asked for.
_QUICK_COMMANDS: dict[str, str] = {
    "status": "show one device across every cloud",
    "watch": "stream a device's telemetry (NDJSON with --json) until Ctrl-C",
    "tasks": "list a device's tasks",
    "history": "a device's timeline across clouds: installation status (who, when), check-ins, tasks, commands",
}
#: Global options that take a value (as the next argument or after ``=``).
_VALUE_OPTIONS = ("--config", "--profile")
_FLAG_OPTIONS = ("--offline", "--read-only")


def _add_global_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """``--config``, ``--profile``, ``--offline`` and ``--read-only``, before or after the command.

    After the command they default to "not given" (SUPPRESS), so that ``--offline status X``
    is not undone by the command's own parser, which sees no ``--offline`` of its own.
    """
    group = parser.add_argument_group("global options") if after_command else parser
    given = argparse.SUPPRESS if after_command else None
    group.add_argument("--config", metavar="PATH", default=given, help="config file (env FIELDTUI_CONFIG)")
    group.add_argument(
        "--profile", metavar="NAME", default=given, help="profile to use (env FIELDTUI_PROFILE)"
    )
    flag = argparse.SUPPRESS if after_command else False
    group.add_argument(
        "--offline", action="store_true", default=flag, help="send nothing; serve reads from the cache"
    )
    group.add_argument("--read-only", action="store_true", default=flag, help="refuse every change")


def _command(sub: argparse._SubParsersAction[_Parser], name: str, help_text: str) -> argparse.ArgumentParser:
    """A command's parser, which also takes the global options."""
    cmd = sub.add_parser(name, help=help_text)
    _add_global_options(cmd, after_command=True)
    return cmd


def _add_read_command(sub: argparse._SubParsersAction[_Parser], name: str, help_text: str) -> None:
    cmd = _command(sub, name, help_text)
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
    _add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    if only in _QUICK_COMMANDS:
        _add_read_command(sub, only, _QUICK_COMMANDS[only])
        return parser

    demo = _command(sub, "demo", "start the simulator and open the app against it")
    demo.add_argument("--fleet-size", type=int, default=200)
    demo.add_argument("--seed", type=int, default=1)

    sim = _command(sub, "sim", "run the simulated clouds in the foreground")
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

    set_status = _command(sub, "set-status", "set a device's installation status (queued first)")
    set_status.add_argument("device", metavar="DEVICE")
    set_status.add_argument("status", choices=INSTALLATION_STATUSES)
    set_status.add_argument("--backend", metavar="NAME", help="the backend that knows the device")
    _add_json(set_status)

    move = _command(sub, "move", "move a device to a group (queued first)")
    move.add_argument("device", metavar="DEVICE")
    move.add_argument("group", metavar="GROUP")
    move.add_argument("--backend", metavar="NAME", help="the backend that knows the device")
    _add_json(move)

    outbox = _command(sub, "outbox", "list, sync, retry or drop queued changes")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", metavar="ACTION", parser_class=_Parser)
    _add_json(_command(outbox_sub, "list", "every queued, failed and recent action"))
    sync = _command(outbox_sub, "sync", "send everything that can be sent, within a deadline")
    sync.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="stop retrying after this long (default 120); what is left is listed, exit 5",
    )
    _add_json(sync)
    retry = _command(outbox_sub, "retry", "queue a failed or conflicting action again")
    retry.add_argument("action_id", metavar="ID")
    _add_json(retry)
    drop = _command(outbox_sub, "drop", "discard an action that has not been sent")
    drop.add_argument("action_id", metavar="ID")
    drop.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    drop.add_argument(
        "--force",
        action="store_true",
        help="drop it even when its cloud cannot tell whether its last, unanswered attempt took effect",
    )
    _add_json(drop)

    from fieldtui.commands import _arguments

    _arguments.add_devices_arguments(_command(sub, "devices", "list a cloud's devices with its own filters"))
    _add_json(sub.choices["devices"])
    _arguments.add_groups_arguments(_command(sub, "groups", "a cloud's groups, or a group's members"))
    _add_json(sub.choices["groups"])
    _add_json(_command(sub, "alerts", "what is alerting now across the clouds"))
    from fieldtui.commands import diagnostics

    diagnostics.add_arguments(
        _command(sub, "diagnostics", "a device's diagnostics: network, LoRa, logs, configs, licences…")
    )
    _add_json(sub.choices["diagnostics"])
    _arguments.add_change_arguments(sub, _command)

    login = _command(sub, "login", "store a backend's secret in the system keyring")
    login.add_argument("backend", metavar="BACKEND")

    info = _command(sub, "info", "show paths, keyring backend and configured backends")
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


def _wants_json(arguments: Sequence[str]) -> bool:
    return "--json" in arguments


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: the reader is gone, and the interpreter's last flush at exit
    must not fail again (it would print "Exception ignored ... BrokenPipeError")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _broken_pipe(exc: BaseException) -> bool:
    """True when ``exc`` is (or, from a task group, holds only) a closed stdout pipe."""
    if isinstance(exc, BrokenPipeError):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_broken_pipe(inner) for inner in exc.exceptions)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else list(argv)
    _Parser.json_errors = _wants_json(arguments)
    args = build_parser(_quick_command(arguments)).parse_args(arguments)
    as_json = bool(getattr(args, "json", False))
    from fieldtui.logging_setup import configure_logging

    configure_logging()
    try:
        code = _run(args)
        # Flush here, not at exit: `fieldtui outbox list | head -1` closes the pipe early.
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except FieldtuiError as exc:
        # An error may quote a cloud's words: `report` keeps escape sequences off the terminal.
        return report(exc, as_json=as_json)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: never a traceback
        if _broken_pipe(exc):
            # `fieldtui tasks X | head -1`: the reader has what it wanted; that is success.
            _quiet_stdout()
            return EXIT_OK
        return report_unexpected(exc, as_json=as_json)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
