"""One telemetry stream per device, merged from every cloud that carries its telemetry.

Connectors yield samples (MQTT push, things/devicehq polling) and raise when their stream
breaks; reconnecting is done here, once for all of them: exponential backoff with jitter, a
``reconnecting`` event on each loss and a ``connected`` event when samples flow again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fieldtui.connectors.base import Connector
from fieldtui.core.errors import AuthError, NotFound, SessionLost, Unsupported
from fieldtui.core.models import StreamEvent, StreamEventKind, TelemetrySample
from fieldtui.service.connectivity import Connectivity, reason

log = logging.getLogger(__name__)

TelemetryItem = TelemetrySample | StreamEvent


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial * 2**n`` capped at ``maximum``, with full jitter on top half."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * (2.0**attempt))
        return base / 2 + rng.uniform(0, base / 2)


def _gives_up(error: BaseException) -> bool:
    """Errors that retrying cannot fix: the backend does not know the device, or our credentials."""
    if isinstance(error, SessionLost):
        return False
    return isinstance(error, NotFound | Unsupported | AuthError)


#: Errors that come from the data, not the connection: reading the same messages again meets
#: them again, so one that repeats with no sample in between ends that backend's stream.
_DATA_ERRORS = (ArithmeticError, ValueError, TypeError, LookupError)


def _holdable(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            float(value)
        except OverflowError:
            return False
    return True


def _readable(sample: TelemetrySample) -> TelemetrySample:
    """``sample`` without numbers a float cannot hold (NaN, infinities, huge integers).

    Checked here, once for every connector: a chart, a sum or a JSON line downstream never
    meets one (``float(10**400)`` raises ``OverflowError``).
    """
    if all(_holdable(value) for value in sample.metrics.values()):
        return sample
    kept = {name: value for name, value in sample.metrics.items() if _holdable(value)}
    return sample.model_copy(update={"metrics": kept})


def _event(device: str, backend: str, kind: StreamEventKind, message: str) -> StreamEvent:
    return StreamEvent(
        device=device, backend=backend, kind=kind, message=message, timestamp=datetime.now(UTC)
    )


async def _close(stream: AsyncIterator[TelemetrySample] | None) -> None:
    """Close a connector's stream at once (an async generator left to the GC keeps its socket)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def _follow(
    connector: Connector,
    device_id: str,
    out: asyncio.Queue[TelemetryItem],
    connectivity: Connectivity | None,
    backoff: Backoff,
    rng: random.Random,
) -> None:
    """Pump one backend's samples into ``out`` forever, reconnecting after every loss."""
    backend = connector.name
    since: datetime | None = None
    attempt = 0
    announce = True
    #: The last data error met since a sample arrived (a repeat ends the stream).
    data_error: str | None = None
    while True:
        stream: AsyncIterator[TelemetrySample] | None = None
        try:
            stream = connector.telemetry(device_id, since=since)
            async for sample in stream:
                if announce:
                    out.put_nowait(
                        _event(device_id, backend, StreamEventKind.CONNECTED, "receiving telemetry")
                    )
                    announce = False
                    if connectivity is not None:
                        connectivity.record_success(backend)
                attempt = 0
                data_error = None
                since = sample.timestamp
                out.put_nowait(_readable(sample))
            error_text = "the stream ended"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every loss is reported and retried
            if connectivity is not None:
                connectivity.record_failure(backend, exc)
            if _gives_up(exc):
                out.put_nowait(_event(device_id, backend, StreamEventKind.ERROR, reason(exc)))
                return
            error_text = reason(exc)
            if isinstance(exc, _DATA_ERRORS):
                if error_text == data_error:
                    message = f"stopped: the cloud keeps sending data fieldtui cannot read ({error_text})"
                    out.put_nowait(_event(device_id, backend, StreamEventKind.ERROR, message))
                    return
                data_error = error_text
        finally:
            await _close(stream)
        delay = backoff.delay(attempt, rng)
        attempt += 1
        announce = True
        out.put_nowait(
            _event(
                device_id,
                backend,
                StreamEventKind.RECONNECTING,
                f"{error_text}; reconnecting in {delay:.1f} s",
            )
        )
        await asyncio.sleep(delay)


async def merged_telemetry(
    connectors: Sequence[Connector],
    device_id: str,
    *,
    connectivity: Connectivity | None = None,
    backoff: Backoff | None = None,
    rng: random.Random | None = None,
) -> AsyncIterator[TelemetryItem]:
    """Samples and stream events from every connector in ``connectors``, as they come.

    Ends only when every backend has given up (each says why in an ``error`` event) or when
    the consumer stops iterating (the per-backend tasks are then cancelled).
    """
    out: asyncio.Queue[TelemetryItem] = asyncio.Queue()
    backoff = backoff or Backoff()
    rng = rng or random.Random()
    tasks = [
        asyncio.create_task(
            _follow(connector, device_id, out, connectivity, backoff, rng),
            name=f"telemetry-{connector.name}-{device_id}",
        )
        for connector in connectors
    ]
    try:
        while True:
            if out.empty() and all(task.done() for task in tasks):
                return
            getter = asyncio.ensure_future(out.get())
            pending = {getter, *(task for task in tasks if not task.done())}
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getter
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
