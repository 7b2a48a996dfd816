"""Offline speech synthesis with eSpeak NG (from the ``espeakng-loader`` wheel, through ctypes).

Used for the demo project and for tests that need speech-like audio without shipping any: it is
robotic, but it has real phonemes, pauses and a mouth-worthy rhythm.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from lipdub.errors import MediaError
from lipdub.media.audio import Audio

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02  # espeak_AUDIO_OUTPUT: synthesise in the calling thread.
_CHARS_UTF8 = 1  # espeak_Synth flags: the text is UTF-8.
_POS_CHARACTER = 1  # espeak_POSITION_TYPE.
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_lock = threading.Lock()  # eSpeak NG keeps global state: one synthesis at a time.
_lib: ctypes.CDLL | None = None
_rate = 0


def _library() -> tuple[ctypes.CDLL, int]:
    global _lib, _rate
    if _lib is None:
        try:
            import espeakng_loader
        except ImportError:
            raise MediaError("offline speech needs the espeakng-loader package") from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        data = espeakng_loader.get_data_path().encode()
        # espeak_Initialize wants the folder that *contains* espeak-ng-data.
        parent = data.rsplit(b"/", 1)[0]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, parent, 0)
        if rate <= 0:
            raise MediaError("eSpeak NG failed to initialise")
        _lib, _rate = lib, rate
    return _lib, _rate


def synthesize(text: str, voice: str = "en", words_per_minute: int = 150) -> Audio:
    """Speak ``text`` with eSpeak NG; mono float32 at eSpeak's own rate (22.05 kHz).

    Raises:
        MediaError: the library or the voice is unavailable.
    """
    with _lock:
        lib, rate = _library()
        chunks: list[np.ndarray] = []

        def on_audio(wav: ctypes._Pointer[ctypes.c_short], n: int, _events: int) -> int:
            if wav and n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0  # 0 = continue.

        callback = _CALLBACK(on_audio)  # Keep a reference while eSpeak may call it.
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise MediaError(f"eSpeak NG has no voice {voice!r}")
        lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE, absolute.
        encoded = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise MediaError(f"eSpeak NG synthesis failed (error {err})")
    if not chunks:
        raise MediaError("eSpeak NG produced no audio")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return Audio(samples[None, :], rate)
