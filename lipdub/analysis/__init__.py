"""lipdub.analysis: everything between a decoded shot and the generator's aligned crops, and back.

Cuts (:mod:`~lipdub.analysis.cuts`), faces and 68 landmarks (:mod:`~lipdub.analysis.faces`,
:mod:`~lipdub.analysis.detection`), tracks and smoothing (:mod:`~lipdub.analysis.tracking`,
:mod:`~lipdub.analysis.smoothing`), actors (:mod:`~lipdub.analysis.identity`), eye alignment
(:mod:`~lipdub.analysis.align`), the U-shaped mask (:mod:`~lipdub.analysis.masks`), the cache
(:mod:`~lipdub.analysis.cache`), the per-shot driver (:mod:`~lipdub.analysis.shot_analysis`) and
the debug views (:mod:`~lipdub.analysis.overlay`). See docs/analysis.md.
"""
