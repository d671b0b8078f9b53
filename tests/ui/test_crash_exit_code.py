"""A crash in the app is an unexpected failure: `fieldtui` exits 1 (README), not 0 as after quitting."""

from __future__ import annotations

from typing import Any

import pytest
from fakes.fake_service import FakeService
from ui_helpers import service_ready

from fieldtui.ui.app import exit_code


class Broken(Exception):
    pass


async def test_a_crash_exits_1_and_quitting_exits_0(make_fake_app: Any) -> None:
    app = make_fake_app(FakeService())
    async with app.run_test() as pilot:
        await service_ready(pilot)
        await pilot.press("ctrl+q")
    assert exit_code(app, app.return_value) == 0

    crashing = make_fake_app(FakeService())
    with pytest.raises(Broken):
        async with crashing.run_test() as pilot:
            await service_ready(pilot)

            def fail() -> None:
                raise Broken("a bug")

            crashing.call_later(fail)
            await pilot.pause(0.5)
    assert exit_code(crashing, crashing.return_value) == 1
