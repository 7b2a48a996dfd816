"""Bounded decode/encode threads: order kept, errors surface in the caller, early stop is clean."""

from __future__ import annotations

import threading
import time

import pytest

from lipdub.media.stream import (
    BackgroundSink,
    StageClock,
    ordered_map,
    prefetch,
    prefetching,
)


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


def test_ordered_map_keeps_order_bounds_flight_and_skips_what_needs_no_work():
    running, most = 0, 0
    lock = threading.Lock()

    def slow_square(x: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002 * (x % 3))  # Later items often finish first.
        with lock:
            running -= 1
        return x * x

    clock = StageClock("work")
    out = list(
        ordered_map(
            slow_square,
            range(60),
            3,
            needs=lambda x: x % 4 != 0,
            passthrough=lambda x: -x,
            depth=5,
            clock=clock,
        )
    )
    assert out == [-x if x % 4 == 0 else x * x for x in range(60)]
    assert most <= 3 and clock.items == 45


def test_ordered_map_reraises_in_order_and_leaves_no_thread():
    before = threading.active_count()

    def fail_at_7(x: int) -> int:
        if x == 7:
            raise ValueError("item 7")
        return x

    got = []
    with pytest.raises(ValueError, match="item 7"):
        for x in ordered_map(fail_at_7, range(100), 4):
            got.append(x)
    assert got == list(range(7))  # Everything before the failure, nothing after.
    gen = ordered_map(lambda x: x, iter(range(10_000)), 2)
    assert next(gen) == 0
    gen.close()  # The consumer stops early: queued work is cancelled, the pool ends.
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before


def test_a_sink_left_on_an_error_drops_what_it_still_holds():
    got = []
    gate, consuming = threading.Event(), threading.Event()

    def slow(x: int) -> None:
        consuming.set()
        gate.wait(5)
        got.append(x)

    with pytest.raises(KeyError), BackgroundSink(slow, depth=10) as sink:
        for i in range(5):
            sink.put(i)
        # Item 0 is being consumed when the error comes (waited for: on a busy machine the
        # sink's thread may not have taken it yet, and then it is dropped with the rest).
        assert consuming.wait(5)
        threading.Timer(1.0, gate.set).start()
        raise KeyError("the producer failed")
    assert got == [0]  # The item being consumed when the error came, none of those queued.


def test_prefetching_stops_every_thread_when_its_block_ends():
    before = threading.active_count()
    with prefetching(depth=2) as ahead:
        a, b = ahead(iter(range(10_000))), ahead(iter(range(10_000)))
        assert (next(a), next(b)) == (0, 0)
        assert threading.active_count() >= before + 2
    assert threading.active_count() <= before
