"""A stand-in for the engine, so codecs are tested without ``filters.plan``.

``FakeEngine.scrub(document, events)`` follows the engine's contract: it removes dropped
events from the lists the events path names, counts events in and out, and returns a real
``ScrubResult``. Its "rules": any string containing ``@`` becomes ``"[email]"`` (rule id
``email``), and an event whose ``"event"`` (or ``attributes.event``) is ``"drop-me"`` is
dropped. ``FakeEngine(identity=True)`` changes and drops nothing (for round-trip tests). Every call
is recorded in ``calls`` so tests can check the documents and events paths codecs send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from filters.outcome import Outcome
from filters.result import ScrubResult
from proxy.codecs.base import AttachmentMode, CodecContext, CodecLimits

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
DROP = "drop-me"


@dataclass
class FakeEngine:
    identity: bool = False
    calls: list[tuple[Any, str | None]] = field(default_factory=list)
    text_calls: list[str] = field(default_factory=list)

    def scrub(self, document: Any, events: str | None) -> ScrubResult:
        self.calls.append((document, events))
        # A JSON round trip both copies the document and proves codecs only hand over
        # JSON-like values (bytes, NaN or sets would fail or change here).
        box = [orjson.loads(orjson.dumps(document))]
        outcome = Outcome()
        if events is None:
            outcome.events_in = 1
            if not self.identity and _dropped(box[0]):
                return ScrubResult(b"null", outcome)
            outcome.events_out = 1
        else:
            for holder, key in event_lists(box, events):
                kept = [event for event in holder[key] if self.identity or not _dropped(event)]
                outcome.events_in += len(holder[key])
                outcome.events_out += len(kept)
                holder[key] = kept
        document = box[0] if self.identity else _replace_emails(box[0], outcome)
        return ScrubResult(orjson.dumps(document), outcome)

    def scrub_text(self, text: str) -> tuple[str, Outcome]:
        self.text_calls.append(text)
        outcome = Outcome()
        if self.identity:
            return text, outcome
        replaced, count = EMAIL.subn("[email]", text)
        if count:
            outcome.rule_hits["email"] += count
        return replaced, outcome


def event_lists(box: list[Any], events: str) -> list[tuple[Any, Any]]:
    """``(holder, key)`` pairs such that ``holder[key]`` is a list of events."""
    holders: list[tuple[Any, Any]] = [(box, 0)]
    segments = events.split(".")
    for number, segment in enumerate(segments):
        name = segment.removesuffix("[*]")
        star = segment.endswith("[*]")
        last = number == len(segments) - 1
        found: list[tuple[Any, Any]] = []
        for holder, key in holders:
            node = holder[key]
            if name:
                if not isinstance(node, dict) or name not in node:
                    continue
                holder, key, node = node, name, node[name]
            if not star:
                found.append((holder, key))
            elif isinstance(node, list):
                found += [(holder, key)] if last else [(node, i) for i in range(len(node))]
        holders = found
    return holders


def _dropped(event: Any) -> bool:
    if not isinstance(event, dict):
        return False
    attributes = event.get("attributes")
    return event.get("event") == DROP or (
        isinstance(attributes, dict) and attributes.get("event") == DROP
    )


def _replace_emails(node: Any, outcome: Outcome) -> Any:
    if isinstance(node, str):
        if "@" in node:
            outcome.rule_hits["email"] += 1
            return "[email]"
        return node
    if isinstance(node, list):
        return [_replace_emails(item, outcome) for item in node]
    if isinstance(node, dict):
        return {key: _replace_emails(value, outcome) for key, value in node.items()}
    return node


def make_ctx(
    engine: FakeEngine | None = None,
    *,
    content_type: str = "application/json",
    path: str = "/",
    limits: CodecLimits | None = None,
    attachments: AttachmentMode = AttachmentMode.DROP,
) -> CodecContext:
    engine = engine or FakeEngine()
    return CodecContext(
        scrub=engine.scrub,
        scrub_text=engine.scrub_text,
        content_type=content_type,
        path=path,
        limits=limits or CodecLimits(),
        attachments=attachments,
    )
