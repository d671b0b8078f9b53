"""The CLI's promises to a technician and to scripts: pipes, global options, exit codes, errors.

Every test runs the real ``python -m fieldtui`` against the simulator over loopback HTTP and
judges what a person or a script would see: stdout, stderr and the exit code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldtui.keymap import BINDING_IDS

# README's exit codes.
NOT_FOUND = 3
USAGE = 2
CONFLICT_OR_FAILED = 6


@pytest.fixture
def cli_env(sim: Any, tmp_path: Path) -> dict[str, str]:
    config, _ = sim.write_config(tmp_path / "config.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDTUI_")}
    env.update(sim.env())
    env.update(
        FIELDTUI_CONFIG=str(config),
        FIELDTUI_DATA_DIR=str(tmp_path / "data"),
        FIELDTUI_LOG_DIR=str(tmp_path / "log"),
        PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
    )
    return env


def fieldtui(
    env: dict[str, str], *args: str, timeout: float = 90, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin if stdin is not None else "",
    )


@pytest.fixture
def closed_pipe() -> Iterator[int]:
    """The write end of a pipe whose reader has gone, as after ``| head -1`` has read its line."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        yield write_end
    finally:
        os.close(write_end)


def into_closed_pipe(
    env: dict[str, str], pipe: int, *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        env=env,
        stdout=pipe,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
    )


def first_of(sim: Any, kind: str, **wanted: Any) -> Any:
    return next(
        d
        for _, d in sorted(sim.fleet.of(kind).items())
        if all(getattr(d, key) == value for key, value in wanted.items())
    )


# -- | head -1 ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command",
    [("outbox", "list"), ("tasks", "{gateway}"), ("status", "{gateway}"), ("watch", "{mqtt}", "--json")],
    ids=["outbox list", "tasks", "status", "watch"],
)
def test_output_into_a_pipe_closed_by_head_ends_quietly(
    sim: Any, cli_env: dict[str, str], closed_pipe: int, command: tuple[str, ...]
) -> None:
    devices = {"gateway": first_of(sim, "devicehq").id, "mqtt": first_of(sim, "mqtt").id}
    args = [part.format(**devices) for part in command]
    result = into_closed_pipe(cli_env, closed_pipe, *args)
    assert result.returncode == 0, result.stderr
    assert "BrokenPipe" not in result.stderr
    assert "unexpected error" not in result.stderr and "Exception ignored" not in result.stderr


# -- global options after the command ------------------------------------------------------
def test_global_options_work_after_the_command(sim: Any, cli_env: dict[str, str], tmp_path: Path) -> None:
    device = first_of(sim, "devicehq").id
    assert fieldtui(cli_env, "status", device).returncode == 0  # fills the read cache
    env = {k: v for k, v in cli_env.items() if k != "FIELDTUI_CONFIG"}
    result = fieldtui(env, "status", device, "--offline", "--config", cli_env["FIELDTUI_CONFIG"], "--json")
    assert result.returncode == 0, result.stderr
    sources = json.loads(result.stdout)["sources"]
    assert sources and all(source["stale"] for source in sources)  # from the cache: --offline held

    refused = fieldtui(cli_env, "move", device, "lobby", "--read-only")
    assert refused.returncode == USAGE and "read-only" in refused.stderr
    unknown = fieldtui(cli_env, "tasks", device, "--profile", "nowhere")
    assert unknown.returncode == USAGE and "'nowhere' is not defined" in unknown.stderr


def test_global_options_before_the_command_still_work(sim: Any, cli_env: dict[str, str]) -> None:
    device = first_of(sim, "devicehq").id
    result = fieldtui(cli_env, "--read-only", "--profile", "sim", "move", device, "lobby")
    assert result.returncode == USAGE and "read-only" in result.stderr


# -- exit codes ----------------------------------------------------------------------------
def test_a_move_the_cloud_refuses_exits_6_not_1(sim_clean: Any, cli_env: dict[str, str]) -> None:
    device = first_of(sim_clean, "things").id
    result = fieldtui(cli_env, "move", device, "no-such-group", "--backend", "things")
    assert result.returncode == CONFLICT_OR_FAILED, result.stdout + result.stderr
    assert "failed" in result.stderr and "fieldtui outbox drop" in result.stderr


def test_a_move_of_a_device_moved_meanwhile_is_a_conflict_exit_6(
    sim_clean: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    device = first_of(sim_clean, "things", also_in=[])
    groups = sorted({d.group for d in sim_clean.fleet.of("things").values() if d.group} - {device.group})
    assert fieldtui(cli_env, "status", device.id).returncode == 0  # this technician sees the group
    colleague = cli_env | {"FIELDTUI_DATA_DIR": str(tmp_path / "colleague")}
    assert fieldtui(colleague, "move", device.id, groups[0]).returncode == 0
    result = fieldtui(cli_env, "move", device.id, groups[1])
    assert result.returncode == CONFLICT_OR_FAILED, result.stdout + result.stderr
    assert "conflict" in result.stderr
    assert sim_clean.admin("GET", f"/_sim/inspect/things/{device.id}").json()["group"] == groups[0]


def test_an_unknown_outbox_id_is_a_usage_error(cli_env: dict[str, str]) -> None:
    for args in (("outbox", "retry", "abcdef12"), ("outbox", "drop", "abcdef12", "--yes")):
        result = fieldtui(cli_env, *args)
        assert result.returncode == USAGE, result.stderr
        assert "no action abcdef12" in result.stderr and "Traceback" not in result.stderr


def test_watch_on_a_cloud_without_telemetry_is_a_usage_error(sim: Any, cli_env: dict[str, str]) -> None:
    device = first_of(sim, "fleet", also_in=[]).id
    result = fieldtui(cli_env, "watch", device)
    assert result.returncode == USAGE, result.stderr
    assert "no telemetry" in result.stderr


def test_login_without_a_keyring_says_so_before_asking_for_the_secret(cli_env: dict[str, str]) -> None:
    # stdin is empty: were the secret asked first, this would be "nothing entered".
    result = fieldtui(cli_env, "login", "things", stdin="")
    assert result.returncode == USAGE, result.stderr
    assert "no usable system keyring" in result.stderr
    assert "FIELDTUI_SECRET_SIM_THINGS" in result.stderr and "fieldtui login things" in result.stderr
    assert "nothing entered" not in result.stderr


# -- --json errors -------------------------------------------------------------------------
def test_status_json_of_an_unknown_device_prints_a_json_error_on_stdout(cli_env: dict[str, str]) -> None:
    result = fieldtui(cli_env, "status", "NO-SUCH-DEVICE-1", "--json")
    assert result.returncode == NOT_FOUND
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "device_not_found"
    assert "NO-SUCH-DEVICE-1" in error["message"] and "hint" in error


def test_json_errors_for_config_and_usage_problems(cli_env: dict[str, str], sim: Any) -> None:
    device = first_of(sim, "devicehq").id
    refused = fieldtui(cli_env, "move", device, "lobby", "--read-only", "--json")
    assert refused.returncode == USAGE
    assert json.loads(refused.stdout)["error"]["code"] == "config"
    missing = fieldtui(cli_env, "status", "--json")
    assert missing.returncode == USAGE
    assert json.loads(missing.stdout)["error"]["code"] == "usage"


# -- one vocabulary ------------------------------------------------------------------------
def test_a_cloud_that_cannot_be_reached_is_named_once_with_its_fix_whole(
    sim_clean: Any, cli_env: dict[str, str]
) -> None:
    gateway = next(
        d.id
        for _, d in sorted(sim_clean.fleet.of("devicehq").items())
        if any(k == "things" for k, _ in d.also_in)
    )
    sim_clean.admin("PUT", "/_sim/faults/things", {"unreachable": True})
    # Asked first, with nothing cached: every cloud with tasks is asked.
    scripted = fieldtui(cli_env, "tasks", gateway, "--json")
    assert scripted.returncode == 0, scripted.stderr
    json.loads(scripted.stdout)
    assert scripted.stderr.count("things:") == 1 and "fieldtui: things: " in scripted.stderr

    human = fieldtui(cli_env, "status", gateway)
    assert human.returncode == 0, human.stderr
    text = human.stdout + human.stderr
    assert "not reachedthings" not in text and "things: things:" not in text
    [line] = [line for line in human.stdout.splitlines() if line.startswith("not reached")]
    assert line.startswith("not reached things: ")
    reason = " ".join(
        row.strip() for row in human.stdout.split("not reached ", 1)[1].splitlines() if row.startswith(" ")
    )
    assert "..." not in line + reason  # the fix is wrapped onto the next lines, not cut
    assert all(len(row) <= 80 for row in human.stdout.splitlines())


def test_auth_errors_name_the_environment_variable_and_login(sim: Any, cli_env: dict[str, str]) -> None:
    device = first_of(sim, "things", also_in=[]).id
    env = {k: v for k, v in cli_env.items() if k != "FIELDTUI_SECRET_SIM_THINGS"}
    result = fieldtui(env, "status", device)
    assert "FIELDTUI_SECRET_SIM_THINGS" in result.stderr and "fieldtui login things" in result.stderr
    assert "things: things:" not in result.stderr


# -- keymap --------------------------------------------------------------------------------
def _with_keymap(cli_env: dict[str, str], tmp_path: Path, table: str) -> dict[str, str]:
    config = tmp_path / "keymap.toml"
    config.write_text(Path(cli_env["FIELDTUI_CONFIG"]).read_text() + "\n[keymap]\n" + table)
    return cli_env | {"FIELDTUI_CONFIG": str(config)}


def test_a_keymap_typo_is_a_config_error_naming_file_and_key(
    sim: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = _with_keymap(cli_env, tmp_path, 'sync_nwo = "ctrl+y"\n')
    result = fieldtui(env, "status", first_of(sim, "devicehq").id)
    assert result.returncode == USAGE
    assert "keymap.toml" in result.stderr and "keymap.sync_nwo" in result.stderr


def test_a_remap_onto_the_quit_key_is_a_config_error(
    sim: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    device = first_of(sim, "devicehq").id
    env = _with_keymap(cli_env, tmp_path, 'sync_now = "ctrl+y,q"\n')
    result = fieldtui(env, "status", device)
    assert result.returncode == USAGE
    assert "keymap.sync_now" in result.stderr and "'q'" in result.stderr
    fine = _with_keymap(cli_env, tmp_path, 'sync_now = "ctrl+y"\nquit = "ctrl+q,q"\n')
    assert fieldtui(fine, "status", device).returncode == 0


def test_the_keymap_knows_every_binding_of_the_app() -> None:
    import importlib
    import inspect
    import pkgutil

    from textual.binding import Binding

    import fieldtui.ui

    ids = set()
    for info in pkgutil.walk_packages(fieldtui.ui.__path__, "fieldtui.ui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            for binding in getattr(cls, "BINDINGS", None) or []:
                if isinstance(binding, Binding) and binding.id:
                    ids.add(binding.id)
    assert not ids - BINDING_IDS, f"add these binding ids to fieldtui.keymap.BINDING_IDS: {ids - BINDING_IDS}"
    assert not BINDING_IDS - ids, f"no such bindings any more: {BINDING_IDS - ids}"
