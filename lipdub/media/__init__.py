"""lipdub.media."""
