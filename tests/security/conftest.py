"""Security tests start from a clean process state: no DeviceHQ session left by an earlier test."""

from __future__ import annotations

import pytest

from fieldtui.connectors.devicehq import forget_sessions


@pytest.fixture(autouse=True)
def _no_shared_devicehq_session() -> None:
    # Earlier tests expire sessions on purpose; their count of takeovers must not carry over.
    forget_sessions()
