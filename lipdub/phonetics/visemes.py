"""Viseme classes: what the mouth must show for a phone, and the table from IPA phones to them.

A dubbing director reads a dub by its visemes: the lips close on /p b m/, the lower lip meets the
upper teeth on /f v/, the lips round on /o u w y/, the mouth opens on /a/ and spreads on /i e/.
Everything else (tongue and throat sounds: t d k g s n l r h ...) the lips barely show, and is
``NEUTRAL``. The table works on IPA in any language: a phone is classified by its base letter,
after its diacritics and length marks are dropped (``oː`` and ``õ`` are both ``o``), and a
diphthong or glide cluster by the sound the lips show first, except that a leading /w/ rounds.

Classes are indices into the last axis of a viseme-posterior array (:data:`CLASSES` order).
"""

from __future__ import annotations

import unicodedata
from enum import IntEnum


class Viseme(IntEnum):
    """The mouth classes the selection and QC speak."""

    NEUTRAL = 0  # Lips relaxed; the tongue does the work (t d k g s n l r h, schwa).
    CLOSED = 1  # Lips pressed together: p b m.
    LIP_TEETH = 2  # Lower lip under the upper teeth: f v.
    ROUNDED = 3  # Lips rounded and narrow: o u w y ø œ ɔ ʊ.
    OPEN = 4  # Jaw open: a ɑ æ ɐ.
    SPREAD = 5  # Lips spread, mouth wide: i e ɪ ɛ.


#: Class names in index order (JSON and reports).
CLASSES: tuple[str, ...] = tuple(v.name.lower() for v in Viseme)

_BY_LETTER: dict[str, Viseme] = {}
for _letters, _cls in (
    ("pbmʙɓ", Viseme.CLOSED),
    ("fvɱʋɸβ", Viseme.LIP_TEETH),
    ("ouwyøœɔʊʏɒɵʉɥ", Viseme.ROUNDED),
    ("aɑæɐɶ", Viseme.OPEN),
    ("ieɪɛɨ", Viseme.SPREAD),
):
    for _ch in _letters:
        _BY_LETTER[_ch] = _cls


def base_letters(phone: str) -> str:
    """The phone's letters without diacritics, length and tone marks (``õː`` → ``o``)."""
    decomposed = unicodedata.normalize("NFD", phone)
    return "".join(
        ch
        for ch in decomposed
        if not unicodedata.combining(ch)
        and unicodedata.category(ch).startswith("L")
        and ch not in "ːˑʰʱʲʷˤ"
    )


def viseme_of(phone: str) -> Viseme:
    """The viseme class of one IPA phone (see the module doc; unknown phones are NEUTRAL)."""
    letters = base_letters(phone)
    if not letters or phone.startswith("<"):  # Empty, or a recognizer's "<blank>", "<unk>".
        return Viseme.NEUTRAL
    if letters[0] == "w" or (len(letters) > 1 and letters[0] == "j" and letters[1] in "uoy"):
        return Viseme.ROUNDED  # wa, ju: the glide rounds the lips first.
    if letters[0] == "j" and len(letters) > 1:
        letters = letters[1:]  # ja, je: the vowel is what the lips show.
    return _BY_LETTER.get(letters[0], Viseme.NEUTRAL)


def is_bilabial(phone: str) -> bool:
    """True for /p b m/ and their variants (aspirated, tense, implosive)."""
    return viseme_of(phone) == Viseme.CLOSED
