"""lipdub: re-sync actors' lips in finished footage to a dubbed audio track, shot by shot."""

__version__ = "0.1.0"
