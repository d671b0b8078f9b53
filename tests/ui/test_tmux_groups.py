"""A group's members marked and moved in a real terminal at 80x24: ``fieldtui`` in tmux against
the simulator, judged by what the pane shows and by the simulator's own record of writes."""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_tmux_e2e import Pane

pytestmark = pytest.mark.slow


@pytest.fixture
def pane80(sim_clean: Any, tmp_path: Path) -> Iterator[Pane]:
    config, env_file = sim_clean.write_config(tmp_path / "config.toml")
    env = {
        "FIELDTUI_CONFIG": str(config),
        "FIELDTUI_DATA_DIR": str(tmp_path / "data"),
        "TERM": "xterm-256color",
        **dict(line.split("=", 1) for line in env_file.read_text().splitlines() if line),
    }
    script = Path(sys.executable).with_name("fieldtui")
    program = shlex.quote(str(script)) if script.exists() else "fieldtui"
    command = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + f" {program}"
    session = f"fieldtui-groups-{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", f"env {command}"],
        check=True,
        env={**os.environ, "TMUX": ""},
    )
    try:
        yield Pane(session)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False, capture_output=True)


def test_three_members_marked_and_moved_at_80x24(pane80: Pane, sim_clean: Any) -> None:
    by_group: dict[str, list[str]] = {}
    for device in sim_clean.fleet.of("things").values():
        by_group.setdefault(device.group, []).append(device.id)
    source = max(sorted(g for g in by_group if g != "unassigned"), key=lambda g: len(by_group[g]))
    target = next(g for g in sorted(by_group) if g not in (source, "unassigned"))
    first_three = sorted(by_group[source])[:3]
    pane = pane80
    pane.wait(lambda s: "Serial, tuid or name" in s, "the lookup screen")
    pane.key("C-g")
    # The Groups screen itself (its summary's keys), not only the group's name: the lookup
    # screen's cached rows can name the group too, and "/" typed there goes to its query.
    pane.wait(lambda s: "Enter: members" in s and source in s, "the groups")
    pane.type("/")
    pane.type(source)
    pane.key("Enter")
    pane.wait(lambda s: "1 of " in s, "the groups filtered")
    # The filter hands the focus back to the groups on the next refresh: a keystroke's pause.
    select.select([], [], [], 0.5)
    pane.key("Enter")
    pane.wait(lambda s: f"Members of {source}" in s and first_three[0] in s, "the members")
    # The members have the focus: the footer offers marking, Move and Status.
    pane.wait(lambda s: all(k in s.splitlines()[-1] for k in ("Mark", "Move", "Status")), "the member keys")
    pane.key("Space", "Space", "Space")
    screen = pane.wait(lambda s: "3 marked" in s and "Unmark" in s.splitlines()[-1], "three marked")
    footer = screen.splitlines()[-1]
    # Whole keys at 80 columns: none cut at the edge.
    assert footer.rstrip().endswith("palette") and "Status" in footer, footer
    pane.type("m")
    pane.wait(lambda s: "Move 3 devices to a group on things" in s, "the group picker")
    pane.type(target)
    pane.key("Enter")
    pane.wait(lambda s: s.count("synced→") == 3, "three rows synced")
    moved = [
        m
        for m in sim_clean.admin("GET", "/_sim/mutations?backend=things").json()
        if any(d in m["path"] for d in first_three)
    ]
    assert sorted(m["path"].split("/")[-2] for m in moved) == first_three, moved
    for device in first_three:
        assert sim_clean.admin("GET", f"/_sim/inspect/things/{device}").json()["group"] == target
    pane.key("C-q")
