"""The shot list, shots.yaml: which ranges of which sources to dub, with which audio, into what.

```yaml
defaults:                       # optional: settings for every shot
  audio_fit: pad-trim
shots:
  - id: sh010
    source: footage/reel1.mov
    in: "01:00:10:00"           # frame number (0 = first frame) or SMPTE timecode;
    out: "01:00:14:12"          # out is exclusive. Timecodes count from the source's start TC.
    # range: auto               # instead of in/out: split the source at its cuts
    actors: [anna]              # whose faces to dub; other faces pass through untouched
    dubs:
      - name: de                # one output per dub track (e.g. per language)
        audio: audio/sh010_de.wav
        offset: 0.0             # seconds; positive = the dub starts later
        gain_db: 0.0
        output: renders/sh010_de.mov   # default renders/<id>_<name><container>
        text: "Papa bringt Brot."      # the dub's script (or text_file: ...; or a NAME.txt
        language: de            # beside the audio); language: eSpeak NG's code, default the name
      - name: fr
        stems: {anna: audio/sh010_fr_anna.wav}   # one stem per character (dialogue)
        mix: audio/sh010_fr_mix.wav              # what the output carries (default: stems summed)
    settings: {blender: poisson}  # per-shot overrides
```
Paths are relative to the folder holding the shots file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from lipdub.config.settings import Settings, check_layer, did_you_mean
from lipdub.config.timecode import TimecodeError, file_timecode, parse_timecode, start_frame
from lipdub.config.yamlfile import LineDict, load_yaml
from lipdub.errors import ConfigError, MediaError
from lipdub.phonetics.track import Script

_TOP_KEYS = ("shots", "defaults", "timeline")
_SHOT_KEYS = ("id", "source", "in", "out", "range", "actors", "dubs", "settings", "timeline")
_DUB_KEYS = (
    "name",
    "audio",
    "stems",
    "mix",
    "offset",
    "gain_db",
    "output",
    "text",
    "text_file",
    "language",
)
#: A dub name that reads as a language code ("de", "pt-br") is its script's language by default.
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]+)?$")
#: Suffix of a dub's script sidecar: ``dub_de.wav`` → ``dub_de.txt``.
SCRIPT_SUFFIX = ".txt"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Dub:
    """One dub track of a shot and the output it renders to."""

    name: str  # Track name, e.g. a language code; part of the default output name.
    output: Path  # Where the dubbed shot is written.
    audio: Path | None = None  # The dub (the full mix, driving every dubbed actor).
    stems: dict[str, Path] = field(default_factory=dict)  # Actor -> their own dub stem.
    mix: Path | None = None  # What the output carries when stems drive the actors.
    offset_s: float = 0.0  # Positive: the dub starts this much later than the shot.
    gain_db: float = 0.0  # Gain applied to the dub (and stems).
    text: str | None = None  # The dub's script (`text:` or `text_file:`), for every actor.
    text_origin: str = ""  # Where `text` came from (file:line or the text file).
    language: str | None = None  # The script's language (eSpeak NG code); None: unknown.

    def script_for(self, actor: str) -> Script | None:
        """The script of what ``actor`` says: the dub's `text`, else a ``NAME.txt`` sidecar
        beside the audio that drives them (None: no script, or no language to read it in)."""
        if self.language is None:
            return None
        if self.text is not None:
            return Script(self.text, self.language, self.text_origin)
        sidecar = self.driving_audio(actor).with_suffix(SCRIPT_SUFFIX)
        if sidecar.is_file():
            text = sidecar.read_text(encoding="utf-8").strip()
            return Script(text, self.language, str(sidecar)) if text else None
        return None

    def driving_audio(self, actor: str) -> Path:
        """The audio that drives ``actor``'s mouth: their stem, else the full dub."""
        if actor in self.stems:
            return self.stems[actor]
        if self.audio is not None:
            return self.audio
        return self.mix if self.mix is not None else next(iter(self.stems.values()))


@dataclass(frozen=True)
class Shot:
    """One shot to dub, with everything resolved: frames, files, settings."""

    id: str  # Unique id, e.g. "sh010".
    source: Path  # The source video (never written to).
    start: int  # First frame (absolute in the source).
    stop: int  # One past the last frame.
    fps: Fraction  # The source's exact frame rate.
    actors: tuple[str, ...]  # Actors to dub (empty: every face found).
    dubs: tuple[Dub, ...]  # One output per dub.
    settings: Settings  # Fully resolved settings for this shot.
    auto_range: bool = False  # True when `range: auto` asked for cut detection.
    line: int = 0  # Line in the shots file (for messages).
    start_timecode: str | None = None  # Source start TC, carried into outputs.
    notes: tuple[str, ...] = ()  # What planning decided on the user's behalf (job warnings).
    # Where the shot sits in the editor's cut it was imported from (`lipdub shots import`):
    # the clip's place on the track, event, name, record timecodes. Read by lipdub.timeline.
    timeline: Mapping[str, Any] | None = None
    # A sub-shot of `range: auto`: the source frames [a, b) its dubs cover as a whole (the
    # unsplit shot). The dub's offset counts from frame a, and this sub-shot plays its own part
    # of it, from frame ``start``. None: the dubs start with this shot.
    dub_span: tuple[int, int] | None = None

    @property
    def frame_count(self) -> int:
        """Number of frames in the shot."""
        return self.stop - self.start

    @property
    def dub_frames(self) -> tuple[int, int]:
        """The source frames [a, b) the dubs cover as a whole (:attr:`dub_span`, or the shot)."""
        return self.dub_span or (self.start, self.stop)

    def timecode_at(self, frame: int) -> str:
        """Label of absolute source ``frame``: the source's start TC plus ``frame``, in the
        source's own drop/non-drop style (00:00:00:00 and the rate's default without a TC)."""
        return file_timecode(frame, self.fps, self.start_timecode)


@dataclass(frozen=True)
class RawShot:
    """A shot as written, before settings are merged (kept for precedence resolution)."""

    data: LineDict
    layer: dict[str, Any]


def load_shots_file(
    path: Path,
) -> tuple[list[RawShot], dict[str, Any], Mapping[str, Any] | None]:
    """Parse and check the structure of a shots file; returns raw shots, the defaults layer and
    the `timeline:` block (None when the shots were not imported from a cut).

    A `timeline:` block (top level and per shot) is metadata written by `lipdub shots import`;
    it must be a mapping and is otherwise read by :mod:`lipdub.timeline`.
    """
    data = load_yaml(path)
    if data is None:
        raise ConfigError(f"{path}: empty shots file; it needs a `shots:` list")
    if not isinstance(data, LineDict):
        raise ConfigError(f"{path}:1: the shots file must be a mapping with a `shots:` list")
    for key in data:
        if key not in _TOP_KEYS:
            raise ConfigError(
                f"{path}:{data.line_of(key)}: unknown key {key!r}"
                f"{did_you_mean(str(key), _TOP_KEYS)} (known: {', '.join(_TOP_KEYS)})"
            )
    defaults = data.get("defaults") or LineDict()
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}:{data.line_of('defaults')}: `defaults` must be a mapping")
    defaults_layer = check_layer(defaults, str(path))
    _check_mapping(data, "timeline", str(path))
    shots = data.get("shots")
    if not isinstance(shots, list) or not shots:
        raise ConfigError(f"{path}:{data.line_of('shots')}: `shots` must be a non-empty list")
    raws: list[RawShot] = []
    seen: dict[str, int] = {}
    for item in shots:
        if not isinstance(item, LineDict):
            raise ConfigError(f"{path}:{data.line_of('shots')}: each shot must be a mapping")
        _check_keys(item, _SHOT_KEYS, f"{path}", "shot")
        sid = item.get("id")
        if not isinstance(sid, str | int) or not _ID.match(str(sid)):
            raise ConfigError(
                f"{path}:{item.line_of('id')}: shot id {sid!r} must be letters, digits, . _ -"
            )
        if str(sid) in seen:
            raise ConfigError(
                f"{path}:{item.line_of('id')}: duplicate shot id {sid!r} (first on line "
                f"{seen[str(sid)]})"
            )
        seen[str(sid)] = item.line_of("id")
        _check_mapping(item, "timeline", str(path))
        settings = item.get("settings") or LineDict()
        if not isinstance(settings, dict):
            raise ConfigError(f"{path}:{item.line_of('settings')}: `settings` must be a mapping")
        raws.append(RawShot(item, check_layer(settings, str(path))))
    return raws, defaults_layer, data.get("timeline")


def _check_mapping(item: LineDict, key: str, where: str) -> None:
    if key in item and not isinstance(item[key], dict):
        raise ConfigError(f"{where}:{item.line_of(key)}: `{key}` must be a mapping")


def _check_keys(item: LineDict, known: tuple[str, ...], where: str, what: str) -> None:
    for key in item:
        if key not in known:
            raise ConfigError(
                f"{where}:{item.line_of(key)}: unknown {what} key {key!r}"
                f"{did_you_mean(str(key), known)} (known: {', '.join(known)})"
            )


def frame_of(value: Any, fps: Fraction, start_tc: str | None, where: str, key: str) -> int:
    """A shot boundary as a source frame number: an int, or a timecode from the source's start."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"{where}: `{key}` must be a frame number or a timecode, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{where}: `{key}` must not be negative, got {value}")
        return value
    if value.strip().isdigit():
        return int(value)
    try:
        frame = parse_timecode(value, fps)
        origin = start_frame(start_tc, fps)
    except TimecodeError as exc:
        raise ConfigError(f"{where}: `{key}`: {exc}") from None
    if frame < origin:
        raise ConfigError(
            f"{where}: `{key}` {value} is before the source's start timecode {start_tc}"
        )
    return frame - origin


def parse_dubs(item: LineDict, base: Path, where: str, sid: str, container: str) -> tuple[Dub, ...]:
    """The shot's `dubs:` list as :class:`Dub` records (files checked to exist)."""
    dubs = item.get("dubs")
    line = f"{where}:{item.line_of('dubs')}"
    if not isinstance(dubs, list) or not dubs:
        raise ConfigError(f"{line}: shot {sid!r} needs a non-empty `dubs:` list")
    out, names = [], set()
    for dub in dubs:
        if not isinstance(dub, LineDict):
            raise ConfigError(f"{line}: each dub must be a mapping (name, audio, ...)")
        _check_keys(dub, _DUB_KEYS, where, "dub")
        dl = lambda k, d=dub: f"{where}:{d.line_of(k)}"  # noqa: E731
        name = str(dub.get("name", "dub"))
        if name in names:
            raise ConfigError(f"{dl('name')}: shot {sid!r} has two dubs named {name!r}")
        names.add(name)
        audio = _existing(dub.get("audio"), base, dl("audio"), "audio")
        mix = _existing(dub.get("mix"), base, dl("mix"), "mix")
        stems_raw = dub.get("stems") or {}
        if not isinstance(stems_raw, dict):
            raise ConfigError(f"{dl('stems')}: `stems` must map actor names to audio files")
        stems: dict[str, Path] = {}
        for k, v in stems_raw.items():
            stem = _existing(v, base, dl("stems"), f"stem {k}")
            if stem is None:  # `anna:` with no file would drive her mouth with nothing.
                raise ConfigError(f"{dl('stems')}: stem {k} needs an audio file")
            stems[str(k)] = stem
        if audio is None and not stems:
            raise ConfigError(
                f"{dl('name')}: dub {name!r} of shot {sid!r} needs `audio` or `stems`"
            )
        offset, gain = dub.get("offset", 0.0), dub.get("gain_db", 0.0)
        for key, value in (("offset", offset), ("gain_db", gain)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{dl(key)}: `{key}` must be a number, got {value!r}")
        text, origin = _script_text(dub, base, dl)
        language = dub.get("language")
        if language is not None and not (isinstance(language, str) and language.strip()):
            raise ConfigError(f"{dl('language')}: `language` must be a language code like de")
        if language is None and _LANGUAGE.match(name):
            language = name
        if text is not None and language is None:
            raise ConfigError(
                f"{dl('text' if 'text' in dub else 'text_file')}: dub {name!r} has a script but "
                "no language: add `language: de` (eSpeak NG's code) to the dub"
            )
        output = dub.get("output") or f"renders/{sid}_{name}{container}"
        if not isinstance(output, str):
            raise ConfigError(f"{dl('output')}: `output` must be a path")
        out.append(
            Dub(
                name=name,
                output=(base / output),
                audio=audio,
                stems=stems,
                mix=mix,
                offset_s=float(offset),
                gain_db=float(gain),
                text=text,
                text_origin=origin,
                language=language,
            )
        )
    return tuple(out)


def _script_text(dub: LineDict, base: Path, dl: Any) -> tuple[str | None, str]:
    """The dub's `text:` or `text_file:` and where it came from (both: a ConfigError)."""
    if "text" in dub and "text_file" in dub:
        raise ConfigError(
            f"{dl('text_file')}: give the dub's script as `text` or `text_file`, not both"
        )
    if "text" in dub:
        text = dub.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{dl('text')}: `text` must be the dub's words")
        return text.strip(), dl("text")
    path = _existing(dub.get("text_file"), base, dl("text_file"), "text_file")
    if path is None:
        return None, ""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{dl('text_file')}: cannot read {path} as UTF-8 text: {exc}") from None
    if not text:
        raise ConfigError(f"{dl('text_file')}: {path} is empty")
    return text, str(path)


def _existing(value: Any, base: Path, where: str, what: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: `{what}` must be a path, got {value!r}")
    path = base / value
    if not path.is_file():
        raise ConfigError(f"{where}: {what} file {path} does not exist")
    return path


def check_range(start: int, stop: int, frame_count: int, where: str, sid: str) -> None:
    """Refuse in >= out and ranges outside the source."""
    if start >= stop:
        raise ConfigError(f"{where}: shot {sid!r}: in ({start}) must be before out ({stop})")
    if stop > frame_count:
        raise ConfigError(
            f"{where}: shot {sid!r}: out ({stop}) is past the source's end ({frame_count} frames)"
        )


def source_error(exc: MediaError, where: str) -> ConfigError:
    """A media problem found while reading the manifest, reported at the manifest line."""
    return ConfigError(f"{where}: {exc}")
