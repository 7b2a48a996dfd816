"""Rendering: the per-shot pipeline, its events, and the executors that run shot jobs."""
