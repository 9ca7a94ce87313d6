"""Backpressure: how much the proxy holds at once, so overload answers 503 instead of
growing memory until the process is killed."""

from __future__ import annotations

from proxy.settings import Limits


class Admission:
    """Counts requests in flight and request-body bytes buffered in memory, per process."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.buffered = 0

    def saturated(self, limits: Limits) -> bool:
        """Whether one more request would exceed ``limits.max_concurrent_requests``."""
        return self.in_flight >= limits.max_concurrent_requests

    def reservation(self, limits: Limits) -> Reservation:
        return Reservation(self, limits.max_buffered_bytes)


class Reservation:
    """The buffered bytes one request holds; grows as its body arrives, released at the
    end of the request (use as a context manager)."""

    def __init__(self, admission: Admission, limit: int) -> None:
        self._admission = admission
        self._limit = limit
        self.size = 0

    def grow(self, size: int) -> bool:
        """Hold at least ``size`` bytes; ``False`` (holding nothing more) if that would
        exceed the process-wide limit."""
        extra = size - self.size
        if extra <= 0:
            return True
        if self._admission.buffered + extra > self._limit:
            return False
        self._admission.buffered += extra
        self.size = size
        return True

    def release(self) -> None:
        self._admission.buffered -= self.size
        self.size = 0

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
