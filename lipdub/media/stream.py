"""Bounded producer/consumer plumbing so decode, per-frame work and encode overlap.

PyAV releases the GIL while FFmpeg decodes and encodes, so a decode thread and an encode thread
run beside the main thread's per-frame work (paste-back, blending). Queues are bounded, so memory
stays a few frames deep however long the shot is.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

#: Frames buffered between two stages.
DEFAULT_DEPTH = 8
_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch(items: Iterable[T], depth: int = DEFAULT_DEPTH) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` ahead of the consumer.

    An exception in the producer is re-raised in the consumer; if the consumer stops early, the
    producer is told to stop and its thread ends.
    """
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # Handed to the consumer, which re-raises it.
            q.put(_Failure(exc))

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


class BackgroundSink(Generic[T]):
    """Calls ``consume(item)`` for each :meth:`put` item in a background thread, in order."""

    def __init__(self, consume: Callable[[T], None], depth: int = DEFAULT_DEPTH) -> None:
        self._consume = consume
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lipdub-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if self._error is None:
                try:
                    self._consume(item)  # type: ignore[arg-type]  # Not _DONE, so a put() T.
                except BaseException as exc:  # Re-raised in the caller's thread.
                    self._error = exc

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
            self._q.put(_DONE)
            self._thread.join()
