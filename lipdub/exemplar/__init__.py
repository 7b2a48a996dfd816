"""The exemplar path: the lower face taken from real frames of the same actor (DESIGN.md)."""
