"""Compression of a trained run: int8 quantisation (:mod:`.quantize`), magnitude pruning (:mod:`.prune`),
and the writing of a compressed run directory that records its parent (:mod:`.run`).

This package's ``__init__`` imports nothing, so :mod:`genlab.models.base` can read a compressed layout
(:mod:`.layout`) without importing the families back.
"""
