"""The audit log: what left the network and which rules changed what — never values."""

import os
import stat

import aiohttp
import orjson

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0}
hashing: {key_env: E2E_HASH_KEY}
audit: {file: audit.jsonl, max_bytes: 2KiB, backups: 2}
policies:
  p:
    rules:
      - {id: hash-ids, action: hash, select: userId}
      - {id: drop-secret, action: remove, select: "**.password"}
      - {id: redact, action: redact}
routes:
  - {name: audited, upstream: "{upstream}", category: analytics, policy: p}
"""


async def test_audit_lines_list_fields_and_changes_without_values(start_proxy, tmp_path):
    base = await start_proxy(SETTINGS)
    event = {
        "userId": "AuditCanaryUser",
        "password": "AuditCanaryPass",
        "m": "canary@example.com",
        "items": [{"sku": 1}],
    }
    async with (
        aiohttp.ClientSession() as client,
        client.post(base + "/x", json={"batch": [event]}) as response,
    ):
        assert response.status == 200
    audit_file = tmp_path / "audit.jsonl"
    text = audit_file.read_text()
    for canary in ("AuditCanaryUser", "AuditCanaryPass", "canary@example.com"):
        assert canary not in text
    (entry,) = [orjson.loads(line) for line in text.splitlines()]
    assert entry["route"] == "audited" and entry["status"] == 200
    assert entry["upstream"] == "127.0.0.1"
    assert entry["events"] == {"in": 1, "out": 1}
    assert entry["fields_sent"] == ["batch[*].items[*].sku", "batch[*].m", "batch[*].userId"]
    assert {"rule": "hash-ids", "path": "batch[0].userId", "count": 1} in entry["changes"]
    assert {"rule": "drop-secret", "path": "batch[0].password", "count": 1} in entry["changes"]
    assert {"rule": "redact", "path": "batch[0].m", "count": 1} in entry["changes"]
    assert entry["detector_hits"] == {"email": 1}
    assert stat.S_IMODE(os.stat(audit_file).st_mode) == 0o600


async def test_audit_log_rotates_by_size(start_proxy, tmp_path):
    base = await start_proxy(SETTINGS)
    async with aiohttp.ClientSession() as client:
        for _ in range(30):
            async with client.post(
                base + "/x", json={"userId": "u", "m": "a@example.com"}
            ) as response:
                assert response.status == 200
    files = sorted(path.name for path in tmp_path.glob("audit.jsonl*"))
    assert files == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(path.stat().st_size <= 2048 for path in tmp_path.glob("audit.jsonl*"))
