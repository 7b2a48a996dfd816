"""Offline speech with eSpeak NG (from the ``espeakng-loader`` wheel, through ctypes).

Three uses, all offline:

- :func:`synthesize`: speech for the demo project and for tests (robotic, but with real phonemes,
  pauses and a mouth-worthy rhythm);
- :func:`synthesize_phones`: the same speech with eSpeak's own phoneme events, so every phone's
  start is known exactly (the viseme bench and the aligner's tests measure against it);
- :func:`phonemize`: text → IPA phones (eSpeak's grapheme-to-phoneme rules, ~100 languages), the
  first step of aligning a dub's script.

eSpeak keeps global state, so every call holds one lock. The library is initialised once, with
phoneme events in IPA switched on (they cost nothing when no callback reads them).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass

import numpy as np

from lipdub.errors import MediaError
from lipdub.media.audio import Audio

_AUDIO_OUTPUT_SYNCHRONOUS = 0x02  # espeak_AUDIO_OUTPUT: synthesise in the calling thread.
_INIT_PHONEME_EVENTS = 0x0001  # espeak_Initialize options: report a PHONEME event per phone,
_INIT_PHONEME_IPA = 0x0002  # with the phone's name in IPA (UTF-8).
_CHARS_UTF8 = 1  # espeak_Synth flags: the text is UTF-8.
_POS_CHARACTER = 1  # espeak_POSITION_TYPE.
_EVENT_LIST_TERMINATED = 0  # espeak_EVENT_TYPE values used here.
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PHONES_IPA = 0x02  # espeak_TextToPhonemes phonememode: IPA names (bit 1) ...
_PHONES_SEPARATOR = ord("_") << 8  # ... separated by "_" (bits 8-23); words by spaces.


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # Milliseconds from the start of the synthesis.
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)
_lock = threading.Lock()  # eSpeak NG keeps global state: one call at a time.
_lib: ctypes.CDLL | None = None
_rate = 0


@dataclass(frozen=True)
class PhoneEvent:
    """One phone eSpeak spoke: its IPA name and where it starts in the audio."""

    phone: str  # IPA, as eSpeak names it ("p", "aː", "ʊ"...).
    start_s: float  # Seconds from the start of the audio.
    word: int  # Index of the word it belongs to (0-based), for reports.


def _library() -> tuple[ctypes.CDLL, int]:
    global _lib, _rate
    if _lib is None:
        try:
            import espeakng_loader
        except ImportError:
            raise MediaError("offline speech needs the espeakng-loader package") from None
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        data = espeakng_loader.get_data_path().encode()
        # espeak_Initialize wants the folder that *contains* espeak-ng-data.
        parent = data.rsplit(b"/", 1)[0]
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, parent, options)
        if rate <= 0:
            raise MediaError("eSpeak NG failed to initialise")
        _lib, _rate = lib, rate
    return _lib, _rate


def _set_voice(lib: ctypes.CDLL, voice: str) -> None:
    if lib.espeak_SetVoiceByName(voice.encode()) != 0:
        raise MediaError(f"eSpeak NG has no voice {voice!r}")


def synthesize_phones(
    text: str, voice: str = "en", words_per_minute: int = 150
) -> tuple[Audio, list[PhoneEvent]]:
    """Speak ``text`` with eSpeak NG and report every phone's start.

    Returns:
        Mono float32 audio at eSpeak's own rate (22.05 kHz) and the phones in order.

    Raises:
        MediaError: the library or the voice is unavailable.
    """
    with _lock:
        lib, rate = _library()
        chunks: list[np.ndarray] = []
        phones: list[PhoneEvent] = []
        words = [-1]

        def on_audio(
            wav: ctypes._Pointer[ctypes.c_short], n: int, events: ctypes._Pointer[_Event]
        ) -> int:
            if wav and n > 0:
                chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            k = 0
            while events and events[k].type != _EVENT_LIST_TERMINATED:
                ev = events[k]
                if ev.type == _EVENT_WORD:
                    words[0] += 1
                elif ev.type == _EVENT_PHONEME:
                    name = _clean(ev.id.string.decode("utf-8", "replace").strip())
                    if name:
                        phones.append(PhoneEvent(name, ev.audio_position / 1000.0, words[0]))
                k += 1
            return 0  # 0 = continue.

        callback = _CALLBACK(on_audio)  # Keep a reference while eSpeak may call it.
        lib.espeak_SetSynthCallback(callback)
        _set_voice(lib, voice)
        lib.espeak_SetParameter(1, words_per_minute, 0)  # espeakRATE, absolute.
        encoded = text.encode("utf-8") + b"\0"
        err = lib.espeak_Synth(encoded, len(encoded), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        if err != 0:
            raise MediaError(f"eSpeak NG synthesis failed (error {err})")
    if not chunks:
        raise MediaError("eSpeak NG produced no audio")
    samples = np.concatenate(chunks).astype(np.float32) / 32768.0
    return Audio(samples[None, :], rate), phones


def synthesize(text: str, voice: str = "en", words_per_minute: int = 150) -> Audio:
    """Speak ``text`` with eSpeak NG; mono float32 at eSpeak's own rate (22.05 kHz).

    Raises:
        MediaError: the library or the voice is unavailable.
    """
    return synthesize_phones(text, voice, words_per_minute)[0]


def phonemize(text: str, voice: str) -> list[list[str]]:
    """IPA phones of ``text`` by eSpeak's rules for ``voice`` (a language such as "de"), per
    word. Stress and syllable marks are dropped; length marks stay on their phone.

    Raises:
        MediaError: the library or the voice is unavailable.
    """
    words: list[list[str]] = []
    with _lock:
        lib, _ = _library()
        _set_voice(lib, voice)
        buf = ctypes.create_string_buffer(text.encode("utf-8"))
        ptr = ctypes.c_char_p(ctypes.addressof(buf))
        mode = _PHONES_IPA | _PHONES_SEPARATOR
        while ptr.value:
            out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, mode)
            if out is None:
                break
            for word in out.decode("utf-8", "replace").split():
                phones = [p for p in (_clean(x) for x in word.split("_")) if p]
                if phones:
                    words.append(phones)
    return words


def _clean(phone: str) -> str:
    """A phone without stress and syllable marks, eSpeak's "-" and zero-width joiners."""
    return "".join(ch for ch in phone if ch not in "ˈˌ.-\u200d")
