"""Bundled checkpoints: manifest.toml plus small safetensors files with JSON configs."""
