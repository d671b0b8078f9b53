"""Config values checked at load, and ``fieldtui info`` showing only what is safe to paste.

A ``ca_bundle`` that is missing, a directory or not PEM is named (file and key) at load, exit 2,
instead of a bare ``FileNotFoundError`` at the first connection; a config nested thousands deep
is refused with a clear message, never ``RecursionError``. ``info`` drops escapes from backend
names and hosts and never echoes a credential embedded in a URL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import certifi
import pytest

from fieldtui.config import MAX_NESTING, load_config, nesting_depth

BASE = """
default_profile = "site-a"
[profiles.site-a.backends.fleet]
kind = "fleet"
url = "https://fleet.example/api/v0/projects/demo"
"""


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fieldtui", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", **(env or {})},
        timeout=60,
    )


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _with_bundle(tmp_path: Path, bundle: Path | str) -> Path:
    return _config(tmp_path, BASE + f"ca_bundle = {json.dumps(str(bundle))}\n")


def _not_pem(tmp_path: Path) -> Path:
    path = tmp_path / "bundle.der"
    path.write_bytes(b"\x30\x82\x01\x0a not a PEM file")
    return path


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "absent.pem", "does not exist"),
        (lambda tmp: tmp, "not a file"),
        (_not_pem, "no PEM certificate"),
    ],
    ids=["missing", "directory", "not-pem"],
)
def test_a_bad_ca_bundle_exits_2_naming_the_file_and_the_key(
    tmp_path: Path, make: object, words: str
) -> None:
    bundle = make(tmp_path)  # type: ignore[operator]
    config = _with_bundle(tmp_path, bundle)
    result = run_cli("--config", str(config), "status", "SN-1")
    assert result.returncode == 2, result.stderr
    assert str(config) in result.stderr
    assert "profiles.site-a.backends.fleet.ca_bundle" in result.stderr
    assert str(bundle) in result.stderr and words in result.stderr
    assert "Traceback" not in result.stderr and "FileNotFoundError" not in result.stderr


def test_a_pem_ca_bundle_loads_and_a_home_path_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_config(str(_with_bundle(tmp_path, certifi.where())))
    assert loaded.backends["fleet"].ca_bundle == certifi.where()
    home = tmp_path / "home"
    (home / "certs").mkdir(parents=True)
    (home / "certs" / "site.pem").write_text(Path(certifi.where()).read_text())
    monkeypatch.setenv("HOME", str(home))
    loaded = load_config(str(_with_bundle(tmp_path, "~/certs/site.pem")))
    assert loaded.backends["fleet"].ca_bundle == str(home / "certs" / "site.pem")


def test_a_config_nested_5000_deep_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE + "deep = " + "[" * 5000 + "]" * 5000 + "\n")
    for args in (("status", "SN-1"), ("info",)):
        result = run_cli("--config", str(config), *args)
        assert result.returncode == 2, result.stderr
        output = result.stdout + result.stderr
        assert str(config) in output and "nested more than" in output
        assert "RecursionError" not in output and "Traceback" not in output


def test_nesting_is_counted_outside_strings_and_comments() -> None:
    text = (
        'a = "[[[[" # [[[[ {{{{\n'
        "b = [[1], [2]]\n"
        'c = """ [[[ \\""" [[[ """\n'
        "d = '[[[\\'\n"
        "e = '''[[[''' \n"
        "[t]\n"
        "f = { g = { h = [1] } }\n"
    )
    assert nesting_depth(text) == 3
    assert nesting_depth("x = " + "[" * (MAX_NESTING + 1)) > MAX_NESTING
    # A config at the limit still loads as TOML (the limit refuses only what no config needs).
    assert nesting_depth("x = " + "[" * MAX_NESTING + "]" * MAX_NESTING) == MAX_NESTING


HOSTILE = "\x1b]0;pwned\x07\x1b[2J"


def test_info_shows_no_escapes_and_no_credentials_from_the_config(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        'default_profile = "site-a"\n'
        f"[profiles.site-a.backends.{json.dumps('evil' + HOSTILE + chr(0x202E))}]\n"
        'kind = "fleet"\n'
        'url = "https://tech:pa55w0rd-9@fleet.example/api?api_key=K3Y-123456&token=T0K-654321&page=2"\n'
        "[profiles.site-a.backends.live]\n"
        'kind = "mqtt"\n'
        f"host = {json.dumps('broker' + HOSTILE)}\n",
    )
    secrets = ("pa55w0rd-9", "K3Y-123456", "T0K-654321")
    human = run_cli("--config", str(config), "info")
    assert human.returncode == 0, human.stderr
    assert "fleet.example" in human.stdout and "page=2" in human.stdout and "broker" in human.stdout
    as_json = run_cli("--config", str(config), "info", "--json")
    assert as_json.returncode == 0, as_json.stderr
    for result in (human, as_json):
        output = result.stdout + result.stderr
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw not in output, repr(raw)
        for secret in secrets:
            assert secret not in output
    info = json.loads(as_json.stdout)
    names = [backend["name"] for backend in info["backends"]]
    assert names[0] == "evil" + HOSTILE + "\u202e"  # kept, encoded: JSON is for scripts
    assert "[REDACTED]@fleet.example" in info["backends"][0]["url"]


def test_a_bad_url_in_the_config_is_quoted_without_its_credentials(tmp_path: Path) -> None:
    config = _config(tmp_path, BASE.replace("https://fleet.example", "ftp://tech:pa55w0rd-9@fleet.example"))
    result = run_cli("--config", str(config), "info")
    assert result.returncode == 2
    assert "url" in result.stdout and "pa55w0rd-9" not in result.stdout + result.stderr
