"""scrubgate's I/O side: settings, CLI, HTTP server, codecs, forwarding, metrics."""
