"""The IPA → viseme table: the classes a dubbing director checks, in any language's spelling."""

from __future__ import annotations

import pytest

from lipdub.phonetics.visemes import Viseme, base_letters, is_bilabial, viseme_of


@pytest.mark.parametrize(
    ("phone", "cls"),
    [
        ("p", Viseme.CLOSED),
        ("pʰ", Viseme.CLOSED),  # Aspirated (English, Korean).
        ("p͈", Viseme.CLOSED),  # Tense (Korean).
        ("b", Viseme.CLOSED),
        ("m", Viseme.CLOSED),
        ("f", Viseme.LIP_TEETH),
        ("v", Viseme.LIP_TEETH),
        ("ɱ", Viseme.LIP_TEETH),  # Labiodental nasal: lip to teeth, not closed.
        ("oː", Viseme.ROUNDED),  # Length mark dropped.
        ("ɔ̃", Viseme.ROUNDED),  # Nasal vowel (French "bon").
        ("u", Viseme.ROUNDED),
        ("y", Viseme.ROUNDED),
        ("wa", Viseme.ROUNDED),  # A w-glide rounds first.
        ("ja", Viseme.OPEN),  # A j-glide: the vowel is what the lips show.
        ("aɪ", Viseme.OPEN),
        ("ɑː", Viseme.OPEN),
        ("i", Viseme.SPREAD),
        ("ɛ", Viseme.SPREAD),
        ("t", Viseme.NEUTRAL),
        ("ʁ", Viseme.NEUTRAL),
        ("<blank>", Viseme.NEUTRAL),
        ("", Viseme.NEUTRAL),
    ],
)
def test_each_phone_gets_the_mouth_it_shows(phone: str, cls: Viseme) -> None:
    assert viseme_of(phone) == cls


def test_base_letters_drop_marks_but_keep_letters() -> None:
    assert base_letters("õː") == "o"
    assert base_letters("t͡ʃ") == "tʃ"
    assert is_bilabial("m") and not is_bilabial("n")
