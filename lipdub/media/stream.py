"""Bounded producer/consumer plumbing so decode, per-frame work and encode overlap.

PyAV releases the GIL while FFmpeg decodes and encodes, and OpenCV and numpy release it inside
their kernels, so a decode thread, a pool of per-frame workers (paste-back, blending) and an
encode thread run beside each other. Queues are bounded, so memory stays a few frames deep however
long the shot is; results come out in input order, so the bytes written are those of a serial
run. Each stage can keep a :class:`StageClock`: the time it worked and the time it waited on its
queues, which is what tells which stage bounds a render.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Frames buffered between two stages.
DEFAULT_DEPTH = 8
_DONE = object()


@dataclass
class StageClock:
    """Where one pipeline stage's time went (seconds; summed over its threads)."""

    name: str  # The stage: "decode", "composite", "encode", ...
    busy: float = 0.0  # Wall time spent in the stage's own work.
    cpu: float = 0.0  # CPU time of the stage's threads in that work (``time.thread_time``;
    # FFmpeg's own worker threads are not counted).
    wait_in: float = 0.0  # Waiting for the stage before it (its queue empty).
    wait_out: float = 0.0  # Waiting for the stage after it (its queue full).
    items: int = 0  # Items (frames) it handled.

    def record(self) -> dict[str, float | int]:
        """JSON-able form, rounded to milliseconds."""
        return {
            "busy_s": round(self.busy, 3),
            "cpu_s": round(self.cpu, 3),
            "wait_in_s": round(self.wait_in, 3),
            "wait_out_s": round(self.wait_out, 3),
            "items": self.items,
        }


class _Timer:
    """Busy wall and CPU time of one piece of work in the calling thread."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.thread_time()

    def add_to(self, clock: StageClock | None) -> None:
        if clock is not None:
            clock.busy += time.perf_counter() - self.wall0
            clock.cpu += time.thread_time() - self.cpu0
            clock.items += 1


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(
    items: Iterable[T], depth: int = DEFAULT_DEPTH, clock: StageClock | None = None
) -> Generator[T, None, None]:
    """Iterate ``items`` in a background thread, at most ``depth`` ahead of the consumer.

    An exception in the producer is re-raised in the consumer; if the consumer stops early (or
    fails), the producer is told to stop and its thread ends. ``clock`` gets the producer's
    busy time and its waits on a full queue.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_on(item: object) -> bool:
        """Queue ``item`` unless told to stop first (then False)."""
        t0 = time.perf_counter()
        try:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False
        finally:
            if clock is not None:
                clock.wait_out += time.perf_counter() - t0

    def produce() -> None:
        try:
            it = iter(items)
            while True:
                timer = _Timer()
                try:
                    item = next(it)
                except StopIteration:
                    break
                timer.add_to(clock)
                if not hand_on(item):
                    return
            hand_on(_DONE)
        except BaseException as exc:  # Handed to the consumer, which re-raises it.
            hand_on(_Failure(exc))

    thread = threading.Thread(target=produce, name="lipdub-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            # The queue is of objects (T and the two sentinels, handled above): this one is a T.
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join(timeout=5)


@contextmanager
def prefetching(
    depth: int = DEFAULT_DEPTH,
) -> Generator[Callable[[Iterable[T]], Iterator[T]], None, None]:
    """A :func:`prefetch` for several iterables, every one of them stopped (its thread ended) when
    the block ends: open the files first, in the same ``with``, so that no decode thread is left
    reading a file that has been closed."""
    started: list[Generator[Any, None, None]] = []

    def ahead(items: Iterable[T]) -> Iterator[T]:
        gen = prefetch(items, depth)
        started.append(gen)
        return gen

    try:
        yield ahead
    finally:
        for gen in reversed(started):
            gen.close()


class _Ready(Generic[R]):
    """A result that needed no work (see :func:`ordered_map`'s ``needs``)."""

    def __init__(self, value: R) -> None:
        self.value = value


def ordered_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    *,
    needs: Callable[[T], bool] | None = None,
    passthrough: Callable[[T], R] | None = None,
    depth: int | None = None,
    clock: StageClock | None = None,
) -> Generator[R, None, None]:
    """``fn(item)`` for every item, in ``workers`` threads, yielded in the order of ``items``.

    Items for which ``needs(item)`` is false skip the pool: ``passthrough(item)`` is yielded in
    their place, in order. At most ``depth`` (default ``2 * workers``) items are in flight, so
    memory is bounded. The first failure is re-raised here, in order (the items before it are
    yielded first); whatever is still queued is cancelled and the running calls are waited for,
    also when the consumer stops early or is interrupted (KeyboardInterrupt), so no worker
    outlives the iteration. ``workers <= 1`` runs ``fn`` in the calling thread: the serial path.

    ``fn`` must be safe to call from several threads at once on different items.
    """
    if needs is not None and passthrough is None:
        raise ValueError("ordered_map: `needs` requires `passthrough`")

    def timed(item: T) -> R:
        timer = _Timer()
        out = fn(item)
        timer.add_to(clock)
        return out

    if workers <= 1:
        for item in items:
            if needs is not None and passthrough is not None and not needs(item):
                yield passthrough(item)
            else:
                yield timed(item)
        return
    limit = depth if depth is not None else 2 * workers
    pending: deque[Future[R] | _Ready[R]] = deque()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="lipdub-work")

    def oldest() -> R:
        head = pending.popleft()
        if isinstance(head, _Ready):
            return head.value
        t0 = time.perf_counter()
        try:
            return head.result()
        finally:
            if clock is not None:
                clock.wait_out += time.perf_counter() - t0  # The consumer waits on the pool.

    try:
        for item in items:
            if needs is not None and passthrough is not None and not needs(item):
                pending.append(_Ready(passthrough(item)))
            else:
                pending.append(pool.submit(timed, item))
            while len(pending) >= limit or (pending and isinstance(pending[0], _Ready)):
                yield oldest()
        while pending:
            yield oldest()
    finally:
        for head in pending:
            if isinstance(head, Future):
                head.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class BackgroundSink(Generic[T]):
    """Calls ``consume(item)`` for each :meth:`put` item in a background thread, in order.

    Leaving its ``with`` block on an exception drops what is still queued (the output is being
    abandoned) and waits for the thread to end.
    """

    def __init__(
        self,
        consume: Callable[[T], None],
        depth: int = DEFAULT_DEPTH,
        clock: StageClock | None = None,
    ) -> None:
        self._consume = consume
        self._clock = clock
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._abandon = False
        self._thread = threading.Thread(target=self._run, name="lipdub-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            item = self._q.get()
            if self._clock is not None:
                self._clock.wait_in += time.perf_counter() - t0
            if item is _DONE:
                return
            if self._error is None and not self._abandon:
                timer = _Timer()
                try:
                    self._consume(item)  # type: ignore[arg-type]  # Not _DONE, so a put() T.
                except BaseException as exc:  # Re-raised in the caller's thread.
                    self._error = exc
                timer.add_to(self._clock)

    def put(self, item: T) -> None:
        """Queue one item (blocks while the queue is full); re-raises a consumer failure."""
        if self._error is not None:
            raise self._error
        self._q.put(item)

    def close(self) -> None:
        """Wait for every queued item to be consumed; re-raise a consumer failure."""
        self._q.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundSink[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abandon = True
            self._q.put(_DONE)
            self._thread.join()
