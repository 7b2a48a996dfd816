"""The error types lipdub raises on purpose.

Every error a user can cause (bad manifest, missing file, unreadable media, missing weights) is a
:class:`LipdubError` whose message is one line naming the file and the problem. The CLI prints it
without a traceback and exits with :attr:`LipdubError.exit_code`.
"""

from __future__ import annotations

import difflib

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
#: Exit code of a run stopped by SIGINT (Ctrl-C), as a shell reports it: 128 + 2.
EXIT_INTERRUPTED = 130
#: Exit code of a run stopped by SIGTERM (a farm cancelling a task): 128 + 15.
EXIT_TERMINATED = 143


class LipdubError(Exception):
    """A problem the user can fix; the message says what and where."""

    exit_code: int = EXIT_JOB_FAILED


class ConfigError(LipdubError):
    """lipdub.toml, shots.yaml, a preset or a command-line option is wrong."""

    exit_code = EXIT_USAGE


class MediaError(LipdubError):
    """A video or audio file is missing, unreadable, or not what lipdub can process."""


class PluginError(LipdubError):
    """A plugin could not be loaded, or two plugins claim one name for a stage."""

    exit_code = EXIT_USAGE


class WeightsError(LipdubError):
    """A checkpoint is missing, tampered with, or does not match its config."""


class DeviceError(LipdubError):
    """The requested compute device (e.g. CUDA) is not available."""

    exit_code = EXIT_USAGE


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    """A ``; did you mean 'x'?`` suffix for an unknown word (empty when nothing is close)."""
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that every ``finally`` (claims, partial
    files, scratch folders) runs before the process ends."""

    def __init__(self) -> None:
        super().__init__("SIGTERM")
