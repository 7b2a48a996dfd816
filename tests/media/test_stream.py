"""Bounded decode/encode threads: order kept, errors surface in the caller, early stop is clean."""

from __future__ import annotations

import threading

import pytest

from lipdub.media.stream import BackgroundSink, prefetch


def test_prefetch_keeps_order_and_bounds_lookahead():
    produced = []

    def numbers():
        for i in range(100):
            produced.append(i)
            yield i

    seen = []
    for x in prefetch(numbers(), depth=4):
        seen.append(x)
        assert len(produced) - len(seen) <= 4 + 2  # Queue depth plus items in flight.
    assert seen == list(range(100))


def test_prefetch_reraises_the_producer_error_and_stops_early():
    def broken():
        yield 1
        raise ValueError("decode failed at frame 1")

    with pytest.raises(ValueError, match="frame 1"):
        list(prefetch(broken()))
    before = threading.active_count()
    gen = prefetch(iter(range(10_000)), depth=2)
    assert next(gen) == 0
    gen.close()
    assert threading.active_count() <= before


def test_sink_consumes_in_order_and_reraises():
    got = []
    with BackgroundSink(got.append, depth=2) as sink:
        for i in range(50):
            sink.put(i)
    assert got == list(range(50))

    def fail(x: int) -> None:
        raise OSError("disk full")

    sink = BackgroundSink(fail)
    sink.put(1)
    with pytest.raises(OSError, match="disk full"):
        sink.close()
