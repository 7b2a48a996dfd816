"""The blend regions the paste-back computed, kept for QC so no mask is computed twice.

QC measures seams and flicker inside the first dubbed face's soft mask, frame by frame, after the
output is written. The mask is the most expensive per-frame step of the exemplar path (two
distance transforms over the face box, about 11 ms at 1080p), and the paste has just computed the
very same one. Keeping every mask in memory would grow with the shot (about 200 kB a frame at
1080p, 0.5 GB for 2,500 frames), so they go to a scratch file beside the shot's other scratch
files, and the memory held is one small index entry per frame.

Writers may be several paste threads at once (see :mod:`lipdub.media.stream`); reads come after
the encode, from QC's thread.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

import numpy as np

Box = tuple[int, int, int, int]


class RegionStore:
    """(box, float32 soft mask) by shot frame, written once each, in a scratch file."""

    def __init__(self, path: Path) -> None:
        """Arguments:
        path: the scratch file (created or truncated; removed by :meth:`close`).
        """
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._end = 0
        self._index: dict[int, tuple[int, Box, tuple[int, int]]] = {}
        self._lock = threading.Lock()

    def put(self, i: int, box: Box, mask: np.ndarray) -> None:
        """Keep frame ``i``'s region (a copy: the caller may change ``mask`` afterwards)."""
        data = np.ascontiguousarray(mask, np.float32)
        if data.ndim != 2:
            raise ValueError(f"frame {i}: a blend mask is (h, w), got {data.shape}")
        raw = data.tobytes()
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path}: put() after close()")
            offset = self._end
            self._end += len(raw)
            self._index[i] = (offset, box, (int(data.shape[0]), int(data.shape[1])))
            fd = self._fd
        os.pwrite(fd, raw, offset)  # Positional: no shared file offset between threads.

    def get(self, i: int) -> tuple[Box, np.ndarray] | None:
        """Frame ``i``'s region as it was put (None: never put)."""
        with self._lock:
            found = self._index.get(i)
            fd = self._fd
        if found is None or fd is None:
            return None
        offset, box, (h, w) = found
        raw = os.pread(fd, h * w * 4, offset)
        mask = np.frombuffer(bytearray(raw), np.float32).reshape(h, w)
        return box, mask

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        """Remove the file."""
        with self._lock:
            fd, self._fd = self._fd, None
            self._index.clear()
        if fd is not None:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> RegionStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
