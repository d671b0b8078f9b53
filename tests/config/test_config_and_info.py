"""Config validation, secrets lookup and `fieldtui info` / `login`, as a user meets them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fieldtui.config import load_config
from fieldtui.core.errors import ConfigError
from fieldtui.secrets import env_var_name, get_secret

GOOD = """
default_profile = "site-a"
[profiles.site-a.backends.sensors]
kind = "mysensor"
url = "https://www.mysensor.io/api"
[profiles.site-a.backends.things]
kind = "things"
url = "https://things.example/prod/v1"
client_id = "installer-7"
[profiles.site-a.backends.gateways]
kind = "devicehq"
url = "https://www.devicehq.com/api/v2"
[profiles.site-a.backends.live]
kind = "mqtt"
host = "broker.example"
port = 8883
tls = true
protocol = 5
"""


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        capture_output=True,
        text=True,
        env=full_env,
        input=stdin,
        timeout=60,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_design_example_config_loads(tmp_path: Path) -> None:
    loaded = load_config(str(write(tmp_path, GOOD)))
    assert loaded.profile_name == "site-a"
    assert {n: b.kind for n, b in loaded.backends.items()} == {
        "sensors": "mysensor",
        "things": "things",
        "gateways": "devicehq",
        "live": "mqtt",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "colour = 'red'\n", "unknown key 'profiles.site-a.backends.live.colour'"),
        (GOOD.replace('client_id = "installer-7"', 'client_id = "x"\nsecret = "oops"'), "unknown key"),
        (GOOD.replace("port = 8883", 'port = "eighty"'), "profiles.site-a.backends.live.port"),
        (
            GOOD.replace('kind = "mysensor"', 'kind = "mysenser"'),
            "allowed: mysensor, things, devicehq, mqtt, fleet",
        ),
        (GOOD.replace('client_id = "installer-7"', ""), "missing required key"),
        (GOOD.replace("protocol = 5", 'protocol = "4"'), "allowed"),
        ("this is [not toml", "not valid TOML"),
    ],
)
def test_bad_config_names_file_key_and_allowed(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_broken_config_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "[profiles.site-a.backends.x]\nkind = 'nope'\n")
    result = run_cli("--config", str(path), "login", "things", stdin="x\n")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_missing_config_file_exits_2_with_a_way_out(tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "absent.toml"), "login", "things")
    assert result.returncode == 2
    assert "config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_profile_lists_the_defined_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="allowed: site-a"):
        load_config(str(write(tmp_path, GOOD)), "site-z")


def test_secret_env_var_name_follows_design() -> None:
    assert env_var_name("site-a", "live.broker") == "FIELDTUI_SECRET_SITE_A_LIVE_BROKER"


def test_secret_comes_from_environment_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDTUI_SECRET_SITE_A_THINGS", "s3cr3t")
    assert get_secret("site-a", "things") == "s3cr3t"


def test_headless_login_names_both_ways_out(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    result = run_cli(
        "--config",
        str(path),
        "login",
        "things",
        env={"PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"},
        stdin="hunter2\n",
    )
    assert result.returncode == 2  # a configuration problem, not a bug
    assert "FIELDTUI_SECRET_SITE_A_THINGS" in result.stderr
    assert "keyrings.alt" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_info_lists_paths_and_backends_never_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    env = {
        "FIELDTUI_SECRET_SITE_A_THINGS": "very-secret-value",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    result = run_cli("--config", str(path), "info", "--json", env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["config_file"] == str(path)
    assert {"data_dir", "log_dir", "outbox", "keyring_backend"} <= info.keys()
    assert [b["name"] for b in info["backends"]] == ["sensors", "things", "gateways", "live"]
    assert info["backends"][3]["url"] == "mqtts://broker.example:8883"
    human = run_cli("--config", str(path), "info", env=env)
    assert "very-secret-value" not in result.stdout + human.stdout + human.stderr
    assert "keyring" in human.stdout


def test_version_and_python_m() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("fieldtui ")
