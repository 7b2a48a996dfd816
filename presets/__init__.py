"""Named quality/speed presets (YAML files beside this module)."""
