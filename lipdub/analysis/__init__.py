"""lipdub.analysis."""
