"""Broken config files: exit code 2 and a message naming the file, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fieldtui.cli import main
from fieldtui.config import parse_config
from fieldtui.core.errors import ConfigError

VALID = """default_profile = "site"
[profiles.site.backends.sensors]
kind = "mysensor"
url = "http://127.0.0.1:9/mysensor/api"
timeout = 5
[profiles.site.backends.things]
kind = "things"
url = "http://127.0.0.1:9/things/prod/v1"
client_id = "installer-7"
[profiles.site.backends.live]
kind = "mqtt"
host = "127.0.0.1"
port = 1883
protocol = 5
"""

SCALARS = [
    "1",
    "-1",
    "0",
    "1e999",
    "nan",
    "true",
    '"x"',
    '""',
    "[]",
    "{}",
    "[1, [2]]",
    "1979-05-27T07:32:00Z",
    '"\\u001b[2J"',
    "'''a'''",
    "inf",
    "70000",
    '"ftp://x"',
    "{ kind = 1 }",
]


@st.composite
def broken_configs(draw: st.DrawFn) -> bytes:
    how = draw(st.sampled_from(["cut", "splice", "value", "text", "bytes", "key"]))
    if how == "cut":
        return VALID[: draw(st.integers(0, len(VALID)))].encode()
    if how == "splice":
        at = draw(st.integers(0, len(VALID)))
        junk = draw(st.text(alphabet="[]{}=\"'.#\n \\,=:abc1", min_size=1, max_size=8))
        return (VALID[:at] + junk + VALID[at:]).encode()
    lines = VALID.splitlines()
    if how == "value":
        values = [i for i, line in enumerate(lines) if " = " in line]
        i = draw(st.sampled_from(values))
        lines[i] = lines[i].split(" = ")[0] + " = " + draw(st.sampled_from(SCALARS))
        return "\n".join(lines).encode()
    if how == "key":
        values = [i for i, line in enumerate(lines) if " = " in line]
        i = draw(st.sampled_from(values))
        lines[i] = (
            draw(st.sampled_from(["colour", "kind", "url", "ssl", "Kind", "tls"]))
            + " = "
            + lines[i].split(" = ")[1]
        )
        return "\n".join(lines).encode()
    if how == "text":
        return draw(st.text(max_size=200)).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=200)) + b"\xff\xfe"


def _parses(raw: bytes, path: Path) -> bool:
    try:
        config = parse_config(raw.decode("utf-8"), path)
    except (ConfigError, UnicodeDecodeError):
        return False
    return bool(config.profiles)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=broken_configs())
def test_a_broken_config_is_exit_2_with_a_message_never_a_traceback(
    raw: bytes,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path_factory.mktemp("cfg")
    monkeypatch.setenv("FIELDTUI_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("FIELDTUI_LOG_DIR", str(home / "logs"))
    monkeypatch.delenv("FIELDTUI_PROFILE", raising=False)
    path = home / "config.toml"
    path.write_bytes(raw)
    code = main(["--config", str(path), "--offline", "tasks", "NO-SUCH-DEVICE"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "unexpected error" not in err, err
    if _parses(raw, path):
        assert code in (2, 3, 4), err  # a valid config: the device is not cached (or no profile)
    else:
        assert code == 2, err
        assert str(path) in err, err
    assert "\x1b" not in err


@pytest.mark.parametrize(
    "raw",
    [
        b"default_profile = \n",
        b'[profiles.a.backends.b]\nkind = "things"\nurl = "http://x"\n',  # no client_id
        b'[profiles.a.backends.b]\nkind = "gopher"\n',
        b"\xff\xfe\x00b\x00r\x00o\x00k\x00e\x00n",
        b"[profiles]\n" + b"a = [" * 5000,
        b'[profiles.a.backends.b]\nkind = "mqtt"\nhost = "h"\nport = 99999\n',
        b'[profiles.a.backends.b]\nkind = "fleet"\nurl = "http://x"\ntimeout = -1\nextra = 1\n',
    ],
)
def test_the_real_command_prints_one_message_and_exits_2(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(raw)
    result = subprocess.run(
        [sys.executable, "-m", "fieldtui", "--config", str(path), "status", "X"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "FIELDTUI_LOG_DIR": str(tmp_path / "logs")},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("fieldtui: ") and str(path) in result.stderr
    assert result.stdout == ""


def test_a_config_that_is_a_directory_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "config.toml").mkdir()
    assert main(["--config", str(tmp_path / "config.toml"), "--offline", "status", "X"]) == 2
