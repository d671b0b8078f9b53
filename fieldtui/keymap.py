"""The ``[keymap]`` table of the config file: which binding ids exist, which keys are taken.

Checked when the config is loaded (Textual would accept a typo silently and the key would
simply not move), so a technician learns of ``sync_nwo`` or ``sync_now = "q"`` at once, with
the file and the key named. Textual-free: ``fieldtui status`` loads the config too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from fieldtui.core.errors import ConfigError

#: Every binding id of the app (``Binding(..., id=...)`` in fieldtui/ui). A test compares this
#: with the app's bindings, so a new binding is added here in the same change.
BINDING_IDS: frozenset[str] = frozenset(
    {
        "alerts_back",
        "alerts_open",
        "alerts_refresh",
        "back",
        "command_cancel",
        "command_line",
        "command_line_close",
        "confirm_cancel",
        "confirm_no",
        "confirm_yes",
        "create_task_back",
        "create_task_cancel",
        "device_command",
        "device_diagnostics",
        "device_history",
        "device_move",
        "device_raw",
        "device_reload",
        "device_status",
        "device_tasks",
        "device_telemetry",
        "diagnostics_ask",
        "diagnostics_copy",
        "fleet_tasks",
        "fleet_tasks_back",
        "fleet_tasks_filter",
        "fleet_tasks_open",
        "group_name_cancel",
        "group_picker_cancel",
        "group_picker_list",
        "groups",
        "groups_back",
        "groups_clear_marks",
        "groups_delete",
        "groups_filter",
        "groups_mark",
        "groups_mark_all",
        "groups_move",
        "groups_new",
        "groups_reload",
        "groups_rename",
        "groups_status",
        "help",
        "help_close",
        "help_down",
        "help_page",
        "help_quit",
        "help_toggle",
        "help_up",
        "install",
        "install_act",
        "install_back",
        "install_next",
        "install_skip",
        "lookup_command_line",
        "lookup_filter",
        "lookup_help",
        "lookup_list",
        "lookup_mark",
        "lookup_move_marked",
        "lookup_open",
        "message_view_close",
        "outbox",
        "outbox_apply",
        "outbox_back",
        "outbox_discard",
        "outbox_drop",
        "outbox_filter",
        "outbox_retry",
        "outbox_sync",
        "quit",
        "skip_cancel",
        "status_cancel",
        "sync_now",
        "table_filter_clear",
        "tasks_back",
        "tasks_cancel",
        "tasks_command",
        "tasks_delete",
        "tasks_detail",
        "tasks_filter",
        "tasks_new",
        "tasks_refresh",
        "telemetry_back",
        "telemetry_log",
        "telemetry_pause",
        "telemetry_view",
    }
)

#: Keys the app keeps for itself (the way out, help, the palette, the terminal's interrupt),
#: with the bindings that may still be mapped onto them.
RESERVED_KEYS: Mapping[str, frozenset[str]] = {
    "q": frozenset({"quit", "help_quit"}),
    "ctrl+q": frozenset({"quit"}),
    "f1": frozenset({"help", "help_toggle"}),
    "question_mark": frozenset({"help", "help_toggle", "lookup_help"}),
    "ctrl+p": frozenset(),
    "ctrl+c": frozenset(),
}

#: Textual's long names for the characters a keymap may spell as themselves.
_KEY_NAMES = {"?": "question_mark", "/": "slash", ":": "colon"}


def _keys(value: str) -> list[str]:
    """The keys of one keymap value (``"ctrl+y, f5"``), in Textual's long form."""
    return [_KEY_NAMES.get(key.strip(), key.strip()) for key in value.split(",")]


def check_keymap(keymap: Mapping[str, str], path: Path) -> None:
    """Raise ConfigError (exit 2) for an unknown binding id, an empty key, or a reserved key."""
    problems = []
    for binding_id, value in keymap.items():
        where = f"{path}: 'keymap.{binding_id}'"
        if binding_id not in BINDING_IDS:
            problems.append(
                f"{path}: unknown key 'keymap.{binding_id}': not a binding id of the app "
                "(Ctrl+P, then Keys, lists them)"
            )
            continue
        for key in _keys(value):
            if not key:
                problems.append(f"{where} has an empty key in {value!r}; separate keys with ','")
            elif key in RESERVED_KEYS and binding_id not in RESERVED_KEYS[key]:
                problems.append(
                    f"{where} cannot use {key!r}: the app keeps it for itself "
                    f"(reserved: {', '.join(sorted(RESERVED_KEYS))})"
                )
    if problems:
        raise ConfigError("\n".join(problems))
