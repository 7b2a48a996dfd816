"""Phone posteriors from dub audio: the bundled CTC phone recognizer (``hama``, any language).

:class:`PhoneRecognizer` is what the rest of the phonetic path asks of a recognizer: per-frame log
posteriors over IPA phone tokens plus a CTC blank, at a fixed frame rate. :class:`HamaRecognizer`
serves it from the ``hama`` wheel: a 4.7 MB waveform-input CTC model over 191 IPA tokens at 50
frames/s, run by the wheel's own CPU engine (numpy only, no download; Apache-2.0 per the wheel,
MIT in its repository; see weights/MODEL_CARD.md). Long dubs are run in overlapping chunks so
memory stays bounded and every frame keeps real audio context on both sides.

CTC posteriors are peaky and late: a phone shows as a spike a little after it starts. On eSpeak NG
speech in six languages (``bench/visemes.py``) the p/b/m spike lies 33–97 ms (10th–90th
percentile, median 53 ms) after the phone's start; :data:`CTC_LAG_S` takes that median out.
"""

from __future__ import annotations

from functools import cache, cached_property
from importlib import metadata
from typing import Protocol

import numpy as np

from lipdub.errors import WeightsError

#: Median delay of a CTC phone spike after the phone's start (see the module doc), seconds.
CTC_LAG_S = 0.05
#: Chunking of long audio: chunk and overlap lengths in seconds (the overlap's halves are
#: dropped on each side, so every kept frame saw at least half an overlap of context). The model
#: itself stops at 30 s (1,500 frames) a call, so chunk + overlap stays below that.
CHUNK_S = 24.0
OVERLAP_S = 2.0


class PhoneRecognizer(Protocol):
    """Per-frame phone log posteriors of 16 kHz mono audio."""

    name: str  # Shown in QC ("hama 1.7.0").
    frame_rate: int  # Posterior frames per second.
    tokens: tuple[str, ...]  # IPA phone per column (the blank and specials included).
    blank: int  # Column of the CTC blank.

    def log_probs(self, audio_16k: np.ndarray) -> np.ndarray:
        """(N, len(tokens)) float32 log posteriors; N = ceil(samples · frame_rate / 16000)."""
        ...


class HamaRecognizer:
    """:class:`PhoneRecognizer` over the ``hama`` wheel's phone ASR (see the module doc)."""

    frame_rate = 50
    _samples_per_frame = 320  # 16 kHz / 50 fps.

    def __init__(self) -> None:
        try:
            import hama
        except ImportError:
            raise WeightsError(
                "the phone recognizer needs the `hama` package (pip install hama==1.7.0)"
            ) from None
        self._model = hama.ASRModel()
        self.tokens: tuple[str, ...] = tuple(self._model.decoder_tokens)
        self.blank = self.tokens.index("<blank>")
        self.name = f"hama {metadata.version('hama')}"

    @cached_property
    def _names(self) -> tuple[str, str, str, str]:
        m = self._model
        return (
            m._waveform_input_name,
            m._waveform_lengths_input_name,
            m._log_probs_output_name,
            m._out_lengths_output_name,
        )

    def _run(self, audio: np.ndarray) -> np.ndarray:
        wav_in, len_in, lp_out, len_out = self._names
        wav = np.ascontiguousarray(audio, np.float32).reshape(1, -1)
        lengths = np.array([wav.shape[1]], np.int64)
        log_probs, out_len = self._model.session.run(
            [lp_out, len_out], {wav_in: wav, len_in: lengths}
        )
        n = int(np.asarray(out_len).reshape(-1)[0])
        return np.asarray(log_probs[0, :n], np.float32)

    def log_probs(self, audio_16k: np.ndarray) -> np.ndarray:
        """See :meth:`PhoneRecognizer.log_probs`."""
        x = np.clip(np.asarray(audio_16k, np.float32).reshape(-1), -1.0, 1.0)
        spf = self._samples_per_frame
        total = -(-len(x) // spf)
        if total == 0:
            return np.zeros((0, len(self.tokens)), np.float32)
        chunk = int(CHUNK_S * self.frame_rate)
        half = int(OVERLAP_S * self.frame_rate) // 2
        out = np.empty((total, len(self.tokens)), np.float32)
        start = 0
        while start < total:
            a = max(0, start - half)
            b = min(total, start + chunk + half)
            lp = self._run(x[a * spf : b * spf])
            lp = _fit(lp, b - a, self.blank)
            stop = min(total, start + chunk)
            out[start:stop] = lp[start - a : stop - a]
            start = stop
        return out


def _fit(lp: np.ndarray, n: int, blank: int) -> np.ndarray:
    """``lp`` cut or padded (with certain blanks) to exactly ``n`` frames."""
    if len(lp) >= n:
        return lp[:n]
    pad = np.full((n - len(lp), lp.shape[1]), -1e4, np.float32)
    pad[:, blank] = 0.0
    return np.concatenate([lp, pad])


@cache
def default_recognizer() -> HamaRecognizer:
    """The bundled recognizer, loaded once per process (the model is read once, then shared).

    Raises:
        WeightsError: the ``hama`` package is missing.
    """
    return HamaRecognizer()
