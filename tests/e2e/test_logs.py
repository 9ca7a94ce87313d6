"""Logs carry routes, verdicts, counts and sizes — never a payload, header or query value."""

import gzip
import logging

import aiohttp
import orjson

from proxy.log import JsonFormatter

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
policies:
  p:
    rules:
      - {id: hash-ids, action: hash, select: userId}
      - {id: redact, action: redact}
routes:
  - {name: scrub, match: {path_prefix: /scrub}, upstream: "{upstream}", category: analytics, policy: p, on_unparseable: reject}
  - {name: fwd, match: {path_prefix: /fwd}, upstream: "{upstream}", category: traces, mode: forward}
  - {name: gone, match: {path_prefix: /gone}, upstream: "http://127.0.0.1:9", category: analytics, policy: p}
"""

CANARIES = (
    "canary.person@example.com",
    "CanaryUser77",
    "4111111111111111",
    "canary-header-secret",
    "canaryquery",
)


async def test_no_canary_reaches_any_log_line(start_proxy, caplog):
    caplog.set_level(logging.DEBUG)
    base = await start_proxy(SETTINGS)
    body = orjson.dumps({"userId": CANARIES[1], "text": f"{CANARIES[0]} {CANARIES[2]}"})
    headers = {
        "Authorization": f"Bearer {CANARIES[3]}",
        "Cookie": f"s={CANARIES[3]}",
        "Content-Type": "application/json",
    }
    async with aiohttp.ClientSession() as client:
        for path, data in [
            (f"/scrub/a?q={CANARIES[4]}", body),
            ("/scrub/b", gzip.compress(body)[:-5]),
            ("/scrub/c", b'{"broken": "' + CANARIES[0].encode()),
            ("/fwd/d", body),
            ("/gone/e", body),
            ("/nowhere", body),
        ]:
            async with client.post(base + path, data=data, headers=headers) as response:
                await response.read()
    text = caplog.text + "\n".join(JsonFormatter().format(record) for record in caplog.records)
    for canary in CANARIES:
        assert canary not in text
    access = [record for record in caplog.records if record.name == "scrubgate.access"]
    verdicts = {record.fields["route"]: record.fields["verdict"] for record in access}
    assert verdicts == {"scrub": "rejected", "fwd": "forwarded", "gone": "failed"}


async def test_access_line_reports_counts_as_json(start_proxy, caplog):
    caplog.set_level(logging.INFO, logger="scrubgate.access")
    base = await start_proxy(SETTINGS)
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/scrub/x", json={"userId": "u", "text": "a@example.com"}) as response,
    ):
        assert response.status == 200
    (record,) = [record for record in caplog.records if record.name == "scrubgate.access"]
    line = orjson.loads(JsonFormatter().format(record))
    assert line["route"] == "scrub" and line["verdict"] == "scrubbed" and line["status"] == 200
    assert line["rule_hits"] == {"hash-ids": 1, "redact": 1}
    assert line["bytes_out"] > 0 and line["duration_ms"] >= 0
