"""Finding the file a timeline clip plays: its media reference, else a file under ``--media``
named for the reference's file, the clip's reel or the clip's name (the usual case for an EDL,
which names reels, not files)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import opentimelineio as otio

VIDEO_SUFFIXES = (".mov", ".mp4", ".mxf", ".mkv", ".avi", ".m4v")
AUDIO_SUFFIXES = (".wav", ".aif", ".aiff", ".flac", ".mp3", ".m4a", ".aac", ".mov", ".mp4")
# otio-cmx3600-adapter 1.0 gives the incoming clip of a dissolve the outgoing clip's media
# reference and keeps the right file only in this comment.
_TO_CLIP = re.compile(r"^TO CLIP:\s*(.+)$")


def url_path(url: str, base: Path) -> Path:
    """A media reference's target as a path: ``file://`` URLs decoded, relative paths taken
    from ``base`` (the folder holding the cut)."""
    if url.startswith("file:"):
        parsed = urlparse(url)
        path = Path(url2pathname(unquote(parsed.path)))
    else:
        path = Path(url)
    return path if path.is_absolute() else base / path


def reel_of(clip: otio.schema.Clip) -> str | None:
    """The clip's reel (tape) name, as an EDL or FCP XML names it."""
    return clip.metadata.get("cmx_3600", {}).get("reel") or clip.metadata.get("fcp_xml", {}).get(
        "reel"
    )


def media_files(media_dirs: tuple[Path, ...]) -> list[Path]:
    """Every picture or sound file under ``media_dirs`` (one walk of each folder)."""
    suffixes = {*VIDEO_SUFFIXES, *AUDIO_SUFFIXES}
    return [
        path
        for folder in media_dirs
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in suffixes and path.is_file()
    ]


class MediaFinder:
    """Finds media for clips; indexes the ``--media`` folders once (file stem and name, case
    folded) so a 1,500-clip cut does not walk them per clip."""

    def __init__(
        self,
        cut_dir: Path,
        media_dirs: tuple[Path, ...],
        suffixes: tuple[str, ...],
        files: list[Path] | None = None,
    ):
        """``files``: the media folders' files as :func:`media_files` lists them, when a
        finder for another kind of media has walked them already."""
        self.cut_dir = cut_dir
        self.media_dirs = media_dirs
        self._index: dict[str, list[Path]] = defaultdict(list)
        for path in media_files(media_dirs) if files is None else files:
            if path.suffix.lower() in suffixes:
                self._index[path.stem.lower()].append(path)
                self._index[path.name.lower()].append(path)

    def files(self) -> list[Path]:
        """Every indexed file, once."""
        return sorted({p for paths in self._index.values() for p in paths})

    def find(
        self, clip: otio.schema.Clip, fits: Callable[[Path], bool] | None = None
    ) -> tuple[Path | None, str]:
        """The clip's file and how it was found, or None and why not.

        ``fits(path)`` says whether a file holds the clip's source timecode; it picks among
        several files of one name, and checks a camera file found by its reel name as a prefix
        (``A001C003`` for ``A001C003_220101_R1AB.mov``: EDL reels are often cut short).
        """
        targets = [
            m[1].strip()
            for c in clip.metadata.get("cmx_3600", {}).get("comments", [])
            if (m := _TO_CLIP.match(str(c)))
        ]
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
            targets.append(ref.target_url)
        for target in targets:
            path = url_path(target, self.cut_dir)
            if path.is_file():
                return path, "reference"
        reel = reel_of(clip)
        names = [url_path(t, self.cut_dir).name for t in targets]
        names += [n for n in (reel, clip.name) if n]
        for name in dict.fromkeys(names):
            hits = sorted(set(self._index.get(name.lower(), [])))
            guessed = not hits and name == reel
            if guessed:
                hits = [p for p in self.files() if p.stem.lower().startswith(name.lower())]
            if fits is not None and (guessed or len(hits) > 1):
                hits = [p for p in hits if fits(p)]
            if len(hits) > 1:
                listed = ", ".join(str(h) for h in hits)
                return None, f"{name!r} matches several files under --media: {listed}"
            if hits:
                how = "reel prefix and timecode" if guessed else "name"
                return hits[0], f"--media by {how} {name!r}"
        tried = ", ".join(repr(n) for n in dict.fromkeys(names)) or "no name"
        where = ", ".join(str(d) for d in self.media_dirs) or "no --media folder given"
        return None, f"media not found (looked for {tried}; under {where})"
