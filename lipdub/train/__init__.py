"""lipdub.train."""
