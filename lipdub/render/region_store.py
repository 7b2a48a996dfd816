"""What the paste-back saw and computed, kept for QC so nothing is computed or decoded twice.

QC measures seams and flicker inside the first dubbed face's soft mask, and the lips' detail, frame
by frame, against the source, after the output is written. The mask is the most expensive
per-frame step of the exemplar path (two distance transforms over the face box, about 11 ms at
1080p), and the paste has just computed the very same one; the source pixels under it are the
ones the paste blended into, before it blended (decoding the source again for QC cost about 8 ms
a frame at 1080p, a third of QC). Keeping every mask and source crop in memory would grow with the
shot (about 350 kB a frame at 1080p, 0.9 GB for 2,500 frames), so they go to a scratch file
beside the shot's other scratch files, and the memory held is one small index entry per frame.

Writers may be several paste threads at once (see :mod:`lipdub.media.stream`); reads come after
the encode, from QC's thread.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class _Entry:
    """Where one frame's region lies in the file."""

    offset: int  # Of the mask; the source crop, if any, follows it.
    box: Box  # The mask's box in the frame.
    mask_shape: tuple[int, int]
    mask_dtype: np.dtype[Any]
    source_box: Box | None  # The kept source crop's box (None: none kept).


class RegionStore:
    """(box, mask) by shot frame, and the source's RGB pixels round it, written once each, in a
    scratch file."""

    def __init__(self, path: Path) -> None:
        """Arguments:
        path: the scratch file (created or truncated; removed by :meth:`close`).
        """
        self.path = path
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._end = 0
        self._index: dict[int, _Entry] = {}
        self._lock = threading.Lock()

    def put(
        self,
        i: int,
        box: Box,
        mask: np.ndarray,
        source: np.ndarray | None = None,
        source_box: Box | None = None,
    ) -> None:
        """Keep frame ``i``'s region (copies: the caller may change its arrays afterwards).

        Arguments:
            i: the shot frame.
            box: (x0, y0, x1, y1) of ``mask`` in the frame.
            mask: (h, w) mask (of any numeric type; it comes back as it went in).
            source: (H, W, 3) uint8 source pixels of ``source_box`` (None: none kept).
            source_box: (x0, y0, x1, y1) of ``source`` in the frame.
        """
        data = np.ascontiguousarray(mask)
        if data.ndim != 2:
            raise ValueError(f"frame {i}: a blend mask is (h, w), got {data.shape}")
        raw = data.tobytes()
        if source is not None:
            if source_box is None:
                raise ValueError(f"frame {i}: a source crop needs its box")
            x0, y0, x1, y1 = source_box
            if source.shape != (y1 - y0, x1 - x0, 3) or source.dtype != np.uint8:
                raise ValueError(
                    f"frame {i}: a source crop of box {source_box} is ({y1 - y0}, {x1 - x0}, 3) "
                    f"uint8, got {source.shape} {source.dtype}"
                )
            raw += np.ascontiguousarray(source).tobytes()
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path}: put() after close()")
            offset = self._end
            self._end += len(raw)
            self._index[i] = _Entry(
                offset,
                box,
                (int(data.shape[0]), int(data.shape[1])),
                data.dtype,
                source_box if source is not None else None,
            )
            fd = self._fd
        os.pwrite(fd, raw, offset)  # Positional: no shared file offset between threads.

    def get(self, i: int) -> tuple[Box, np.ndarray] | None:
        """Frame ``i``'s (box, mask) as it was put (None: never put)."""
        found, fd = self._find(i)
        if found is None or fd is None:
            return None
        h, w = found.mask_shape
        raw = os.pread(fd, h * w * found.mask_dtype.itemsize, found.offset)
        return found.box, np.frombuffer(bytearray(raw), found.mask_dtype).reshape(h, w)

    def source(self, i: int) -> tuple[Box, np.ndarray] | None:
        """Frame ``i``'s kept source crop as (box, (H, W, 3) uint8) (None: none kept)."""
        found, fd = self._find(i)
        if found is None or fd is None or found.source_box is None:
            return None
        h, w = found.mask_shape
        x0, y0, x1, y1 = found.source_box
        shape = (y1 - y0, x1 - x0, 3)
        at = found.offset + h * w * found.mask_dtype.itemsize
        raw = os.pread(fd, shape[0] * shape[1] * 3, at)
        return found.source_box, np.frombuffer(bytearray(raw), np.uint8).reshape(shape)

    def _find(self, i: int) -> tuple[_Entry | None, int | None]:
        with self._lock:
            return self._index.get(i), self._fd

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
