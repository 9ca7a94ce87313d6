"""Wire formats and content encodings: bytes on the wire <-> documents for the engine.

The request path through this package, all plain functions over bytes:

1. :func:`proxy.codecs.encoding.decode_content` undoes ``Content-Encoding`` (capped);
2. :func:`proxy.codecs.detect.detect_format` names the format (unless the route does);
3. :func:`proxy.codecs.registry.scrub_body` hands the body to that format's codec, which
   builds documents, calls ``ctx.scrub`` and writes the result back in the same format;
4. :func:`proxy.codecs.encoding.encode_content` re-applies the original encodings.

Query strings of any request go through :func:`proxy.codecs.query.scrub_query`.
"""
