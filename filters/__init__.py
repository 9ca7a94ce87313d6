"""scrubgate's scrubbing engine: pure, synchronous, no I/O.

Settings (typed specs from :mod:`filters.spec`) are compiled once into an immutable
:class:`filters.plan.Plan`; the plan scrubs documents on the hot path.
"""
