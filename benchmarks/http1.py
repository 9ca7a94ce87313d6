"""Just enough HTTP/1.1 for the benchmark's sink and load generator.

An incremental reader of messages framed by Content-Length or chunked transfer coding,
header names lowercased. Not a general-purpose parser: it trusts its peer (the proxies
under test on 127.0.0.1) and exists because the benchmark's own side must cost far less
per request than the proxies it measures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Message:
    """One request or response. ``body`` is empty unless the reader keeps bodies."""

    start_line: bytes
    headers: dict[str, str]
    body: bytes

    @property
    def status(self) -> int:
        """The status code of a response."""
        return int(self.start_line.split(b" ", 2)[1])


class MessageReader:
    """Feed it bytes as they arrive; it returns the messages they complete.

    With ``keep_body`` false (the default, for timing) bodies are counted and discarded."""

    def __init__(self, keep_body: bool = False) -> None:
        self.keep_body = keep_body
        self._buffer = bytearray()
        self._head: tuple[bytes, dict[str, str]] | None = None
        self._body = bytearray()
        self._remaining = 0
        self._chunk_state = ""

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages = []
        while (message := self._next()) is not None:
            messages.append(message)
        return messages

    def _next(self) -> Message | None:
        if self._head is None and not self._read_head():
            return None
        complete = self._read_chunked() if self._chunk_state else self._read_fixed()
        if not complete or self._head is None:
            return None
        start_line, headers = self._head
        self._head = None
        body = bytes(self._body)
        self._body.clear()
        return Message(start_line, headers, body)

    def _read_head(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        start_line, *lines = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[: end + 4]
        headers = {}
        for line in lines:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        self._head = (start_line, headers)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_state = "size" if chunked else ""
        self._remaining = 0 if chunked else int(headers.get("content-length", "0"))
        return True

    def _take(self, count: int) -> int:
        taken = min(count, len(self._buffer))
        if self.keep_body:
            self._body += self._buffer[:taken]
        del self._buffer[:taken]
        return taken

    def _read_fixed(self) -> bool:
        self._remaining -= self._take(self._remaining)
        return self._remaining == 0

    def _read_chunked(self) -> bool:
        while True:
            if self._chunk_state == "data":
                self._remaining -= self._take(self._remaining)
                if self._remaining:
                    return False
                self._chunk_state = "crlf"
            elif self._chunk_state == "crlf":
                if len(self._buffer) < 2:
                    return False
                del self._buffer[:2]
                self._chunk_state = "size"
            else:
                end = self._buffer.find(b"\r\n")
                if end < 0:
                    return False
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 2]
                if self._chunk_state == "trailer":
                    if not line:
                        self._chunk_state = ""
                        return True
                    continue
                self._remaining = int(line.split(b";")[0], 16)
                self._chunk_state = "data" if self._remaining else "trailer"
