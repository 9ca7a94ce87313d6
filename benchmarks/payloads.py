"""Deterministic, realistic telemetry for benchmarks (all personal data synthetic).

``analytics_batch`` builds a Segment-style batch: 20 track/page/identify events of
4-8 KB with ids, context.ip, userAgent, page url/referrer with query strings, traits with
email and phone, free text mentioning emails/IPs/card-like numbers, and nested line items
(``lean=True`` leaves the line items out: ~1.6 KB per event).
"""

from __future__ import annotations

import random
from typing import Any

_WORDS = (
    *("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do"),
    *("eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim"),
    *("ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris"),
)
_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.109 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
_FIRST = ("ivan", "maria", "chen", "amara", "lukas", "sofia", "noah", "yuki")
_LAST = ("rossi", "garcia", "wei", "okafor", "schmidt", "silva", "jones", "tanaka")


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _email(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}{rng.randint(1, 999)}@example.com"


def _product(rng: random.Random) -> dict[str, Any]:
    sku = f"SKU-{rng.randint(10000, 99999)}"
    return {
        "product_id": f"{rng.getrandbits(96):024x}",
        "sku": sku,
        "category": rng.choice(("electronics", "shoes", "toys", "books")),
        "name": _sentence(rng, 3).title(),
        "brand": rng.choice(("Initech", "Hooli", "Umbrella", "Globex")),
        "price": round(rng.uniform(5, 500), 2),
        "quantity": rng.randint(1, 4),
        "coupon": rng.choice(("WELCOME5", "SPRING10", "")),
        "url": f"https://shop.example.com/products/{sku}?ref=cart&variant={rng.randint(1, 9)}&utm_source=email",
        "image_url": f"https://cdn.example.com/img/{rng.getrandbits(64):016x}.jpg?w=640&h=640",
    }


def _event(rng: random.Random, index: int, lean: bool) -> dict[str, Any]:
    email = _email(rng)
    kind = ("track", "page", "identify")[index % 3]
    event: dict[str, Any] = {
        "type": kind,
        "messageId": f"{rng.getrandbits(128):032x}",
        "userId": f"user_{rng.randint(10**6, 10**7)}",
        "anonymousId": f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-4{rng.getrandbits(12):03x}-"
        f"a{rng.getrandbits(12):03x}-{rng.getrandbits(48):012x}",
        "timestamp": f"2026-11-{rng.randint(10, 28)}T{rng.randint(10, 23)}:{rng.randint(10, 59)}:00.000Z",
        "context": {
            "ip": f"198.51.100.{rng.randint(1, 254)}",
            "userAgent": rng.choice(_AGENTS),
            "locale": "en-US",
            "library": {"name": "analytics.js", "version": "4.1.0"},
            "page": {
                "path": "/checkout",
                "url": f"https://shop.example.com/checkout?step=2&email={email}&utm_campaign=spring",
                "referrer": f"https://www.example.org/search?q={rng.choice(_WORDS)}&session=s{rng.getrandbits(40):x}",
                "title": _sentence(rng, 4),
            },
            "traits": {"email": email, "phone": f"+1 202-555-{rng.randint(1000, 9999)}"},
            "screen": {"width": 1920, "height": 1080},
        },
        "properties": {
            "order_id": f"ord_{rng.randint(10**8, 10**9)}",
            "currency": "EUR",
            "note": f"{_sentence(rng, 8)} contact {_email(rng)} from 203.0.113.{rng.randint(1, 254)}",
            "comment": f"{_sentence(rng, 20)} card 4111 1111 1111 1111 {_sentence(rng, 10)}",
            "search_query": _sentence(rng, 2),
            "feedback": _sentence(rng, 60),
        },
    }
    if kind == "identify":
        event["traits"] = {
            "email": email,
            "name": f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            "plan": "pro",
        }
    if not lean:
        target = rng.randint(4000, 8000)
        products: list[dict[str, Any]] = []
        while len(str(event)) + sum(len(str(product)) for product in products) < target:
            products.append(_product(rng))
        event["properties"]["products"] = products
    return event


def analytics_batch(seed: int = 7, events: int = 20, lean: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    return {
        "batch": [_event(rng, index, lean) for index in range(events)],
        "sentAt": "2026-11-25T10:30:01.000Z",
        "context": {"library": {"name": "analytics-node", "version": "1.3.0"}},
        "writeKey": "wk_benchmark",
    }


def feedback_lines(count: int = 5000, seed: int = 11) -> list[str]:
    """~50-byte free-text lines: feedback comments and log lines, some with PII."""
    rng = random.Random(seed)
    templates = (
        lambda: f"cannot export report, mail {_email(rng)}",
        lambda: f"login failed from 192.0.2.{rng.randint(1, 254)} after retry",
        lambda: f"please call +44 20 7946 {rng.randint(1000, 9999)} tomorrow",
        lambda: f"GET /api/v2/items?page={rng.randint(1, 50)} 200 {rng.randint(5, 900)}ms",
        lambda: f"worker {rng.randint(1, 16)} restarted after OOM at v1.4.{rng.randint(0, 9)}",
        lambda: _sentence(rng, 8),
        lambda: f"token=ghp_{rng.getrandbits(180):036x}"[:52],
    )
    return [rng.choice(templates)() for _ in range(count)]
