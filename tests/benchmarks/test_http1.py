"""benchmarks/http1.py: message framing for the benchmark's sink and load generator."""

from __future__ import annotations

from benchmarks.http1 import MessageReader

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Name: a\r\n\r\nhello"
CHUNKED = (
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
)


def test_messages_split_anywhere_come_out_whole():
    reader = MessageReader(keep_body=True)
    data = RESPONSE + CHUNKED + RESPONSE
    messages = [
        message for index in range(len(data)) for message in reader.feed(data[index : index + 1])
    ]

    assert [message.body for message in messages] == [b"hello", b"abcde", b"hello"]
    assert messages[0].status == 200 and messages[0].headers["x-name"] == "a"
    assert messages[1].start_line == b"POST / HTTP/1.1"


def test_bodies_are_counted_not_kept_by_default():
    (message,) = MessageReader().feed(RESPONSE)

    assert message.body == b"" and message.headers["content-length"] == "5"
