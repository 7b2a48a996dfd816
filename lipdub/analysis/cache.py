"""The analysis cache: one folder per (source content, frame range, settings, stages).

Re-dubbing a shot into another language finds its analysis here and skips face detection. The
key hashes the source's *content* (blake2b over the whole file, read in chunks), never its name
or modification time, so a copied or touched file still hits and an edited one misses. Hashing a
large master takes a while, so each file's hash is remembered in ``hashes.json`` under its path,
size and mtime; a file whose size or mtime changed is hashed again.

Layout under the project's cache dir (``.lipdub/cache/``)::

    hashes.json                    path -> {size, mtime_ns, blake2b}
    analysis/<key>/analysis.json   ShotAnalysis.save()
    analysis/<key>/tracks.npz
    gallery/<key>.npz              face descriptors of one actor reference file
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: Read size when hashing files.
CHUNK_BYTES = 4 << 20
_lock = threading.Lock()


def file_hash(path: Path, cache_dir: Path | None = None) -> str:
    """blake2b (32-byte digest, hex) of the file's content, memoised in ``cache_dir``."""
    path = Path(path)
    st = path.stat()
    index_path = cache_dir / "hashes.json" if cache_dir else None
    key = str(path.resolve())
    index: dict[str, dict[str, object]] = {}
    if index_path is not None and index_path.is_file():
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError):
            log.warning("%s: unreadable hash index, starting a new one", index_path)
    entry = index.get(key)
    if entry and entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
        return str(entry["blake2b"])
    digest = hashlib.blake2b(digest_size=32)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    value = digest.hexdigest()
    if index_path is not None:
        with _lock:
            index[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "blake2b": value}
            index_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = index_path.with_name(f".hashes.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(index, indent=1))
            tmp.replace(index_path)
    return value


def analysis_key(
    content_hash: str, start: int, stop: int, settings_key: str, stages: dict[str, str]
) -> str:
    """The cache key of one shot's analysis."""
    parts = [content_hash, str(start), str(stop), settings_key]
    parts += [f"{k}={v}" for k, v in sorted(stages.items())]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def analysis_dir(cache_dir: Path, key: str) -> Path:
    """Folder of one cached analysis."""
    return cache_dir / "analysis" / key


def gallery_path(cache_dir: Path, content_hash: str, detector: str, frames: int) -> Path:
    """File of the cached descriptors of one actor reference file."""
    key = hashlib.sha256(f"{content_hash}|{detector}|{frames}".encode()).hexdigest()[:32]
    return cache_dir / "gallery" / f"{key}.npz"
