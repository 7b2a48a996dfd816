"""lipdub.config."""
