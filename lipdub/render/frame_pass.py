"""The encode pass of a render as a pipeline: decode → per-frame work → encode, in frame order.

Three stages joined by bounded queues (:mod:`lipdub.media.stream`): a decode thread, a pool of
threads pasting the new faces (OpenCV and numpy release the GIL in their kernels) and an encode
thread (PyAV releases it inside FFmpeg). Frames the dub does not change skip the pool and go from
decode to encode as they are. Results are taken in frame order and the paste of one frame reads
nothing another writes, so the file is the serial path's, byte for byte. OpenCV runs on one
thread of its own during the pass, serial or not: its pool splits a call into stripes by its
thread count, runs a call made while the pool is busy (another paste thread's) in one stripe, and
a few of its kernels round differently by stripe (README: a frame in 75 moved by 1/255 with the
CPU count); with one stripe always, the paste is the same however many threads run it. With
``LIPDUB_SERIAL_RENDER=1`` (and on one CPU) the paste runs in the calling thread, one frame at a
time: the reference the tests compare with, and the render as it was before the pool. Decode and
encode keep threads of their own even then: run in one thread, interleaved, PyAV 18.1's decode
and encode gave other bytes from run to run for the same frames (a 50-frame clip, 2 files in 4
runs; each alone, or each in its own thread, always one).

A failure in any stage ends the others: the pool's queued frames are cancelled, the decode thread
is told to stop, the encoder drops what it still holds; the caller's ``atomic_output`` then
removes the partial file. Ctrl-C (KeyboardInterrupt in the main thread) takes the same way out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from lipdub import CV_THREADS
from lipdub.media.stream import (
    DEFAULT_DEPTH,
    BackgroundSink,
    StageClock,
    ordered_map,
    prefetch,
)

#: Set to "1" to run the encode pass serially, in the calling thread.
SERIAL_ENV = "LIPDUB_SERIAL_RENDER"
#: Paste threads to use at most (a whole number); ``--jobs N`` shares the CPUs out with it.
WORKERS_ENV = "LIPDUB_RENDER_WORKERS"
#: Most paste threads: beyond this the GIL-holding Python around the kernels stops scaling.
MAX_WORKERS = 4
#: Bytes of decoded frames each of the pass's two queues (decode → paste, paste → encode) may
#: hold: eight 1080p RGB frames. The queues are there to even out the stages' pace, not to hold
#: a fixed count of frames: at UHD eight frames a queue were 0.4 GB, and the encode pass's peak
#: RSS grew by 1.5 GB over the generation's (bench/results.md, render at UHD).
QUEUE_BYTES = 8 * 1920 * 1080 * 3
#: Fewest frames a queue holds, however large they are (one being handed on, one waiting).
MIN_QUEUE = 2


FrameFn = Callable[[int, np.ndarray], np.ndarray]


def serial_requested() -> bool:
    """True when ``LIPDUB_SERIAL_RENDER=1``."""
    return os.environ.get(SERIAL_ENV, "") == "1"


def render_workers() -> int:
    """Paste threads for this process: one per CPU it may use, at most :data:`MAX_WORKERS` (and
    at most ``LIPDUB_RENDER_WORKERS``); 1 (no threads at all) when the serial path is asked
    for. The count never changes the output's bytes, only how fast it is written."""
    if serial_requested():
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        cpus = os.cpu_count() or 1
    cap = os.environ.get(WORKERS_ENV, "")
    if cap.isdigit() and int(cap) >= 1:
        cpus = min(cpus, int(cap))
    return max(1, min(MAX_WORKERS, cpus))


@dataclass
class PassTimes:
    """Where one encode pass's time went, per stage (see :class:`StageClock`)."""

    workers: int  # Paste threads (1: serial).
    depth: int = DEFAULT_DEPTH  # Frames each queue holds at most (see queue_depth).
    decode: StageClock = field(default_factory=lambda: StageClock("decode"))
    composite: StageClock = field(default_factory=lambda: StageClock("composite"))
    encode: StageClock = field(default_factory=lambda: StageClock("encode"))
    untouched: int = 0  # Frames that went from decode to encode with no per-frame work.
    wall: float = 0.0  # Seconds the pass took.
    cpu: float = 0.0  # Process CPU seconds during the pass (every thread, FFmpeg's included).

    def record(self) -> dict[str, Any]:
        """JSON-able form (the job report's ``timing``)."""
        return {
            "workers": self.workers,
            "queue_depth": self.depth,
            "untouched_frames": self.untouched,
            "wall_s": round(self.wall, 3),
            "process_cpu_s": round(self.cpu, 3),
            **{c.name: c.record() for c in (self.decode, self.composite, self.encode)},
        }


def encode_frames(
    frames: Iterable[np.ndarray],
    write: Callable[[Any], None],
    frame_fn: FrameFn | None,
    changes: np.ndarray | None = None,
    on_frame: Callable[[int], None] | None = None,
    workers: int | None = None,
    frame_bytes: int | None = None,
    prepare: Callable[[np.ndarray], Any] | None = None,
) -> PassTimes:
    """Run ``frames`` through ``frame_fn(i, frame)`` into ``write``, in order.

    Arguments:
        frames: the decoded frames (an iterator that decodes lazily).
        write: the encoder's write (called in one thread, in frame order), of each frame as
            ``prepare`` left it.
        frame_fn: the per-frame work (None: every frame as decoded); called from several
            threads at once on different frames.
        changes: (frames,) bool, the frames ``frame_fn`` changes; the others skip it (None: all
            may change).
        on_frame: called in the calling thread with each frame's index once it is queued for
            encoding (progress).
        workers: paste threads (default :func:`render_workers`; 1: the paste in this thread).
        frame_bytes: the size of one decoded frame (sets :func:`queue_depth`; None: 1080p's).
        prepare: what the encoder needs done to a finished frame that may run beside it
            (:meth:`lipdub.media.write.VideoWriter.prepare`: the conversion to its pixel
            format), run in the paste threads, and in this thread for frames that skip them;
            None: frames go to ``write`` as they are.

    Returns:
        The per-stage times.
    """
    n_workers = render_workers() if workers is None else max(1, workers)
    times = PassTimes(n_workers, queue_depth(frame_bytes))
    wall0, cpu0 = time.perf_counter(), time.process_time()

    def finish(frame: np.ndarray) -> Any:
        return frame if prepare is None else prepare(frame)

    def work(item: tuple[int, np.ndarray]) -> Any:
        assert frame_fn is not None
        return finish(frame_fn(*item))

    def needed(item: tuple[int, np.ndarray]) -> bool:
        i = item[0]
        return frame_fn is not None and (changes is None or i >= len(changes) or bool(changes[i]))

    def as_is(item: tuple[int, np.ndarray]) -> Any:
        times.untouched += 1
        return finish(item[1])

    # OpenCV on one thread, so every call is one stripe (see above): importing lipdub set it for
    # the process (lipdub.CV_THREADS). Set again if a plugin changed it, never restored, which
    # would race with another thread's calls.
    if cv2.getNumThreads() != CV_THREADS:
        cv2.setNumThreads(CV_THREADS)
    try:
        _pipelined(frames, write, work, needed, as_is, on_frame, times)
    finally:
        times.wall = time.perf_counter() - wall0
        times.cpu = time.process_time() - cpu0
    return times


def queue_depth(frame_bytes: int | None) -> int:
    """Frames each of the pass's queues holds: :data:`QUEUE_BYTES` of them, between
    :data:`MIN_QUEUE` and the streams' default depth (None: the default)."""
    if frame_bytes is None or frame_bytes <= 0:
        return DEFAULT_DEPTH
    return max(MIN_QUEUE, min(DEFAULT_DEPTH, QUEUE_BYTES // frame_bytes))


def _pipelined(
    frames: Iterable[np.ndarray],
    write: Callable[[Any], None],
    work: Callable[[tuple[int, np.ndarray]], Any],
    needed: Callable[[tuple[int, np.ndarray]], bool],
    as_is: Callable[[tuple[int, np.ndarray]], Any],
    on_frame: Callable[[int], None] | None,
    times: PassTimes,
) -> None:
    """Decode thread → paste pool (or this thread, for one worker) → encode thread; this thread
    hands frames on in order."""
    with (
        BackgroundSink(write, depth=times.depth, clock=times.encode) as sink,
        closing(prefetch(enumerate(frames), times.depth, clock=times.decode)) as decoded,
        closing(
            ordered_map(
                work,
                decoded,
                times.workers,
                needs=needed,
                passthrough=as_is,
                clock=times.composite,
            )
        ) as done,
    ):
        for i, out in enumerate(done):
            sink.put(out)
            if on_frame is not None:
                on_frame(i)
