"""Named quality/speed presets (YAML files beside this module).

A preset is a settings layer like any other (the lowest after the built-in defaults), so it may
pick stage choices (``blender: laplacian``) and set ``stage_options: {STAGE: {...}}``. The bundled
ones set no stage options on purpose: a project that picks another blender than the preset's
would otherwise meet options written for the preset's (refused, as every undeclared option is).
"""
