"""The scrub target's reference: a proxy that only parses and re-serializes the JSON.

    python -m benchmarks.roundtrip --port PORT --upstream URL [--loop asyncio|uvloop]

The passthrough relay plus ``orjson.loads`` and ``orjson.dumps`` of every body. A gzip
body is decompressed first and compressed again afterwards at the level scrubgate uses
(3), since a scrub route has to do the same.
"""

from __future__ import annotations

import gzip

import orjson

from benchmarks.passthrough import run

GZIP_LEVEL = 3


def parse_and_serialize(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        document = orjson.loads(gzip.decompress(body))
        return gzip.compress(orjson.dumps(document), compresslevel=GZIP_LEVEL, mtime=0)
    return orjson.dumps(orjson.loads(body))


if __name__ == "__main__":
    run(parse_and_serialize)
