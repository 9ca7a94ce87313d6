"""Detectors: named finders of sensitive values inside strings, and the scanner that runs
all of them over a buffer in one pass.

* :mod:`filters.detectors.base` - what a detector is (patterns + validator), hits, buffer kinds;
* :mod:`filters.detectors.scanner` - :class:`~filters.detectors.scanner.Scanner`;
* :mod:`filters.detectors.registry` - every built-in detector by name;
* one module per family: ``contact``, ``financial``, ``network``, ``credentials``,
  ``paths``, ``identifiers``, ``organization``, ``custom``.
"""
