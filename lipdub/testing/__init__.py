"""Checks for plugin authors: :mod:`lipdub.testing.contract` runs a blender or generator found
by name through the plugin manager against its stage's documented contract."""
