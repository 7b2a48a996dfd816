"""lipdub.eval."""
