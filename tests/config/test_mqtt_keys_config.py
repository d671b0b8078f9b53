"""An MQTT backend's per-device keys in the config: a private keys file, checked when loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fieldtui.config import MqttBackend, parse_config
from fieldtui.core.errors import ConfigError


def config_text(keys_file: Path | str, extra: str = "") -> str:
    return (
        "[profiles.site.backends.live]\n"
        'kind = "mqtt"\n'
        'host = "broker.example"\n'
        f'keys_file = "{keys_file}"\n'
        f"{extra}"
    )


def keys(path: Path, text: str = '"dev-a" = "key-a"\n', mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_private_keys_file_is_accepted(tmp_path: Path) -> None:
    keys_file = keys(tmp_path / "live-keys.toml")
    config = parse_config(config_text(keys_file, "keys_in_keyring = true\n"), tmp_path / "config.toml")
    live = config.profiles["site"].backends["live"]
    assert isinstance(live, MqttBackend)
    assert live.keys_file == str(keys_file) and live.keys_in_keyring is True


def test_a_keys_file_under_home_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    keys(tmp_path / "live-keys.toml")
    config = parse_config(config_text("~/live-keys.toml"), tmp_path / "config.toml")
    live = config.profiles["site"].backends["live"]
    assert isinstance(live, MqttBackend) and live.keys_file == str(tmp_path / "live-keys.toml")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_keys_file_others_can_read_is_refused_with_the_fix(tmp_path: Path, mode: int) -> None:
    keys_file = keys(tmp_path / "live-keys.toml", mode=mode)
    with pytest.raises(ConfigError) as refused:
        parse_config(config_text(keys_file), tmp_path / "config.toml")
    text = str(refused.value)
    assert "'profiles.site.backends.live.keys_file'" in text and str(tmp_path / "config.toml") in text
    assert f"readable by other users (mode {mode:04o})" in text
    assert f"chmod 600 {keys_file}" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('"dev-a" = \n', "not valid TOML"),
        ('"dev-a" = 12\n', "needs a non-empty string key; not: 'dev-a'"),
        ('"dev-a" = ""\n', "needs a non-empty string key; not: 'dev-a'"),
        ("[dev-a]\nkey = 'x'\n", "needs a non-empty string key; not: 'dev-a'"),
    ],
)
def test_a_keys_file_that_is_not_device_id_to_key_names_what_is_wrong(
    tmp_path: Path, content: str, expected: str
) -> None:
    keys_file = keys(tmp_path / "live-keys.toml", content)
    with pytest.raises(ConfigError, match=expected) as refused:
        parse_config(config_text(keys_file), tmp_path / "config.toml")
    assert refused.value.hint is not None and '"DEVICE_ID" = "ACCESS_KEY"' in refused.value.hint


def test_a_missing_keys_file_or_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the MQTT keys file does not exist"):
        parse_config(config_text(tmp_path / "nowhere.toml"), tmp_path / "config.toml")
    directory = tmp_path / "keys.d"
    directory.mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="not a regular file"):
        parse_config(config_text(directory), tmp_path / "config.toml")


def test_an_unknown_key_beside_keys_file_is_an_error(tmp_path: Path) -> None:
    keys_file = keys(tmp_path / "live-keys.toml")
    with pytest.raises(ConfigError, match=r"unknown key 'profiles\.site\.backends\.live\.keys_dir'"):
        parse_config(config_text(keys_file, 'keys_dir = "/tmp"\n'), tmp_path / "config.toml")


def test_fieldtui_refuses_a_world_readable_keys_file_with_exit_2(tmp_path: Path) -> None:
    keys_file = keys(tmp_path / "live-keys.toml", mode=0o644)
    config = tmp_path / "config.toml"
    config.write_text(config_text(keys_file))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDTUI_")}
    env.update(FIELDTUI_CONFIG=str(config), FIELDTUI_DATA_DIR=str(tmp_path / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "fieldtui", "status", "dev-a"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"chmod 600 {keys_file}" in result.stderr and "readable by other users" in result.stderr
