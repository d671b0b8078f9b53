"""The k9s-style ``:`` command line: a word names a view (``:outbox``), ``:device SERIAL`` opens a
device, ``:create``/``:register``/``:delete``/``:edit``/``:setting`` change device records (see
``fieldtui.ui.device_records``), ``:q`` quits. Pure parsing here; the app runs what it names."""

from __future__ import annotations

from dataclasses import dataclass

#: command -> (what it does, words that also name it). Order is the order help lists them in.
COMMANDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "lookup": ("the lookup (home) screen", ("home", "l")),
    "device": ("open a device: :device SERIAL", ("dev", "d")),
    "outbox": ("queued, failed and conflicting changes", ("o",)),
    "groups": ("groups and their members", ("group", "g")),
    "tasks": ("each cloud's task queue", ("t",)),
    "alerts": ("devices with alerts", ("alert", "a")),
    "install": ("guided installation", ("i",)),
    "create": ("create a fleet device: :create SERIAL owner_ref=O hardware_version=H", ()),
    "register": ("register a DeviceHQ gateway: :register SERIAL UUID", ()),
    "delete": ("delete a device record (SERIAL: the open device): :delete SERIAL [CLOUD]", ()),
    "edit": ("edit a device record (the open device): :edit SERIAL FIELD=VALUE …", ()),
    "setting": ("set an MQTT cloud setting (the open device): :setting SERIAL PROPERTY=VALUE", ()),
    "sync": ("send the outbox now", ("s",)),
    "offline": ("stop sending: reads from the cache, changes queued", ()),
    "online": ("ask the clouds again and send what waits", ()),
    "help": ("keys of this screen, then every key", ("h", "?")),
    "quit": ("quit (the outbox is kept on disk)", ("q", "q!", "exit")),
}

#: The commands that take words after their name (a device first).
TAKE_ARGUMENTS = frozenset({"device", "create", "register", "delete", "edit", "setting"})

#: The commands that, without a SERIAL, act on the device open on screen.
ON_OPEN_DEVICE = frozenset({"delete", "edit", "setting"})

_ALIASES = {alias: name for name, (_, aliases) in COMMANDS.items() for alias in (name, *aliases)}


@dataclass(frozen=True, slots=True)
class CommandLine:
    """A parsed line: the command's name and its argument (``device``'s serial), or a problem."""

    name: str | None
    argument: str = ""
    problem: str | None = None


def parse_command_line(line: str) -> CommandLine:
    """``":device 74162"`` -> CommandLine("device", "74162"); an unknown word says which are known."""
    words = line.strip().removeprefix(":").split(maxsplit=1)
    if not words:
        return CommandLine(None)
    word = words[0].lower()
    argument = words[1].strip() if len(words) > 1 else ""
    name = _ALIASES.get(word)
    if name is None:
        return CommandLine(None, argument, f"No command :{word}. Known: {known_commands()}")
    if name in TAKE_ARGUMENTS and name not in ON_OPEN_DEVICE and not argument:
        usage = COMMANDS[name][0].rpartition(": ")[2]
        return CommandLine(name, problem=f"Which device? Type {usage}")
    if name not in TAKE_ARGUMENTS and argument:
        return CommandLine(name, problem=f":{name} takes no argument (did you mean :device {argument}?)")
    return CommandLine(name, argument)


def known_commands() -> str:
    return " ".join(f":{name}" for name in COMMANDS)
