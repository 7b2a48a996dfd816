"""eSpeak NG's phoneme events and G2P, through ctypes: the ground truth the viseme bench uses."""

from __future__ import annotations

from lipdub.speech import phonemize, synthesize_phones


def test_phone_events_are_ordered_and_inside_the_audio() -> None:
    audio, events = synthesize_phones("Papa bringt Brot.", "de")
    assert [e.phone for e in events][:4] == ["p", "a", "p", "aː"] or events[0].phone == "p"
    starts = [e.start_s for e in events]
    assert starts == sorted(starts)
    assert starts[0] >= 0 and starts[-1] < audio.duration_s
    assert {e.word for e in events} == {0, 1, 2}


def test_g2p_gives_ipa_phones_per_word_without_stress_marks() -> None:
    words = phonemize("Le bébé boit.", "fr")
    assert len(words) == 3
    assert words[1] == ["b", "e", "b", "e"]
    assert not any(ch in p for w in words for p in w for ch in "ˈˌ-")
