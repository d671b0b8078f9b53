"""The chaos soak's judgement (bench/soak_effects.py): which repeats in a cloud's record are
idempotent resends, which are doubles, and which reorderings the engine allows."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

from soak_effects import count_lost_and_doubled, same_order, task_effect, without_resends


def test_a_value_set_again_while_it_holds_is_a_resend_but_after_another_value_a_double() -> None:
    seen = [("description", "a"), ("group", "roof"), ("description", "a"), ("description", "b")]
    assert without_resends("gateways", seen) == (
        [("description", "a"), ("group", "roof"), ("description", "b")],
        1,
    )
    stale = [("cloud_setting", "x=1"), ("cloud_setting", "x=2"), ("cloud_setting", "x=1")]
    kept, resends = without_resends("live", stale)
    assert resends == 0
    extra, missing = count_lost_and_doubled(kept, [("cloud_setting", "x=1"), ("cloud_setting", "x=2")])
    assert extra == {("cloud_setting", "x=1"): 1} and not missing


def test_commands_creates_and_statuses_repeated_are_doubles() -> None:
    for backend, effect in [
        ("live", ("command", 7)),
        ("things", ("status", "installed")),
        ("gateways", ("task", "INSTALL_CONFIGS:a")),
        ("fleet", ("create_device", "F1")),
        ("things", ("create_group", "g")),
    ]:
        kept, resends = without_resends(backend, [effect, effect])
        assert resends == 0
        assert count_lost_and_doubled(kept, [effect]) == ({effect: 1}, {})


def test_a_register_again_is_a_resend_until_a_delete_comes_between() -> None:
    register, delete = ("create_device", "R1"), ("delete_device", "R1")
    assert without_resends("gateways", [register, register]) == ([register], 1)
    kept, _ = without_resends("gateways", [register, delete, register])
    assert count_lost_and_doubled(kept, [register, delete]) == ({register: 1}, {})
    # On the fleet a create is never collapsed (a second one would be refused by the cloud).
    assert without_resends("fleet", [register, register]) == ([register, register], 0)


def test_a_cancel_may_pass_a_held_create_but_nothing_else_changes_order() -> None:
    create_a, create_b = ("task", "INSTALL_CONFIGS:a"), ("task", "SOFTWARE_UPGRADE:f")
    cancel_a = ("cancel_task", "t1")
    assert same_order([create_a, cancel_a, create_b], [create_a, create_b, cancel_a])
    assert not same_order([create_b, create_a, cancel_a], [create_a, create_b, cancel_a])
    assert not same_order(
        [("status", "new"), ("status", "installed")], [("status", "installed"), ("status", "new")]
    )


def test_a_task_create_reads_the_same_queued_and_as_the_cloud_records_it() -> None:
    assert task_effect("install_configs", {"config_ids": ["a", "b"]}) == "INSTALL_CONFIGS:a,b"
    assert task_effect("INSTALL_CONFIGS", {"type": "INSTALL_CONFIGS", "config_ids": ["a", "b"]}) == (
        "INSTALL_CONFIGS:a,b"
    )
    assert task_effect("SOFTWARE_UPGRADE", {"firmware_id": "f1"}) == "SOFTWARE_UPGRADE:f1"
