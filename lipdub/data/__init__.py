"""Prepared clips for training and evaluation: the on-disk format and ``lipdub data prepare``
(:mod:`~lipdub.data.prepare`), and loading them (:mod:`~lipdub.data.clips`). Below both
``eval`` and ``train``, which read the same clips."""
