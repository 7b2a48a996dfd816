"""lipdub.model."""
