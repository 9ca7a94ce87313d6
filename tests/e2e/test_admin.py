"""The admin listener: health, readiness, metrics after known traffic, reload, config."""

import base64

import aiohttp
import orjson
import pytest

from proxy import metrics
from proxy.server import ScrubgateServer
from proxy.state import SettingsHolder
from tests.e2e.processes import scrubgate_process

TOKEN = "admin-token-for-tests-0123456789"
HASH_KEY = "hash-key-that-must-never-be-shown-0123"

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0, token_env: ADMIN_TOKEN}
hashing: {key_env: HASH_KEY}
policies:
  p:
    rules:
      - {id: hash-ids, action: hash, select: userId}
      - {id: redact, action: redact}
routes:
  - name: admin-test
    upstream: "http://vendor-user:vendor-pass@127.0.0.1:{port}"
    category: analytics
    policy: p
"""


@pytest.fixture
async def running(tmp_path, upstream):
    port = upstream.url.rsplit(":", 1)[1]
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS.replace("{port}", port))
    holder = SettingsHolder(str(path), {"ADMIN_TOKEN": TOKEN, "HASH_KEY": HASH_KEY})
    server = ScrubgateServer(holder)
    await server.start()
    yield (
        server,
        path,
        f"http://127.0.0.1:{server.bound['main']}",
        f"http://127.0.0.1:{server.bound['admin']}",
    )
    await server.stop()


def sample(name, **labels):
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_health_and_readiness(running):
    _, _, _, admin = running
    async with aiohttp.ClientSession() as client:
        async with client.get(admin + "/-/healthy") as response:
            assert response.status == 200
        async with client.get(admin + "/-/ready") as response:
            assert response.status == 200 and (await response.json())["status"] == "ready"


async def test_metrics_count_known_traffic_exactly(running):
    _, _, base, admin = running
    labels = {"route": "admin-test", "category": "analytics"}
    before = {
        "scrubbed": sample("scrubgate_requests_total", **labels, verdict="scrubbed"),
        "forwarded": sample("scrubgate_requests_total", **labels, verdict="forwarded"),
        "hash": sample("scrubgate_rule_hits_total", route="admin-test", rule="hash-ids"),
        "email": sample("scrubgate_detector_hits_total", route="admin-test", detector="email"),
        "kept": sample("scrubgate_events_total", route="admin-test", verdict="kept"),
        "2xx": sample("scrubgate_upstream_responses_total", route="admin-test", status_class="2xx"),
    }
    async with aiohttp.ClientSession() as client:
        for _ in range(3):
            async with client.post(
                base + "/t", json={"userId": "u", "m": "a@example.com b@example.com"}
            ) as response:
                assert response.status == 200
        async with client.post(base + "/t", json={"n": 1}) as response:
            assert response.status == 200
        async with client.get(admin + "/metrics") as response:
            exposition = await response.text()
    assert (
        sample("scrubgate_requests_total", **labels, verdict="scrubbed") - before["scrubbed"] == 3
    )
    assert (
        sample("scrubgate_requests_total", **labels, verdict="forwarded") - before["forwarded"] == 1
    )
    assert (
        sample("scrubgate_rule_hits_total", route="admin-test", rule="hash-ids") - before["hash"]
        == 3
    )
    assert (
        sample("scrubgate_detector_hits_total", route="admin-test", detector="email")
        - before["email"]
        == 6
    )
    assert (
        sample("scrubgate_events_total", route="admin-test", verdict="kept") - before["kept"] == 4
    )
    assert (
        sample("scrubgate_upstream_responses_total", route="admin-test", status_class="2xx")
        - before["2xx"]
        == 4
    )
    assert (
        'scrubgate_requests_total{category="analytics",route="admin-test",verdict="scrubbed"}'
        in exposition
    )
    assert "a@example.com" not in exposition


async def test_reload_needs_the_token_and_keeps_the_old_plan_when_invalid(running):
    _, path, base, admin = running
    async with aiohttp.ClientSession() as client:
        async with client.post(admin + "/-/reload") as response:
            assert response.status == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with client.post(admin + "/-/reload", headers=auth) as response:
            assert response.status == 200 and (await response.json())["status"] == "reloaded"
        assert sample("scrubgate_config_last_reload_successful") == 1
        path.write_text(path.read_text().replace("action: hash", "action: hashh"))
        async with client.post(admin + "/-/reload", headers=auth) as response:
            assert response.status == 400
            errors = (await response.json())["errors"]
        assert any(f"{path}:" in error and "did you mean 'hash'" in error for error in errors)
        assert sample("scrubgate_config_last_reload_successful") == 0
        async with client.post(base + "/t", json={"m": "a@example.com"}) as response:
            assert response.status == 200


async def test_config_endpoint_needs_the_token_and_masks_secrets(running):
    _, _, _, admin = running
    async with aiohttp.ClientSession() as client:
        async with client.get(admin + "/-/config") as response:
            assert response.status == 401
        async with client.get(
            admin + "/-/config", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            assert response.status == 200
            text = await response.text()
    assert HASH_KEY not in text and TOKEN not in text and "vendor-pass" not in text
    shown = orjson.loads(text)["settings"]
    assert shown["routes"][0]["name"] == "admin-test"
    assert shown["routes"][0]["upstream"].startswith("http://***@127.0.0.1:")
    assert shown["hashing"]["key_env"] == "HASH_KEY"


# --- refusals without the right token, and secrets in no output -------------------------


@pytest.mark.parametrize(
    ("headers", "query"),
    [
        ({"Authorization": "Bearer wrong-token"}, ""),
        ({"Authorization": f"Bearer {TOKEN}x"}, ""),
        ({"Authorization": f"Bearer {TOKEN[:-1]}"}, ""),
        ({"Authorization": TOKEN}, ""),
        ({"Authorization": f"Basic {TOKEN}"}, ""),
        ({"Authorization": f"Bearer  {TOKEN}"}, ""),
        ({"X-Admin-Token": TOKEN}, ""),
        ({}, f"?token={TOKEN}"),
    ],
    ids=[
        "wrong",
        "suffixed",
        "truncated",
        "no-scheme",
        "basic-scheme",
        "two-spaces",
        "other-header",
        "query-string",
    ],
)
async def test_reload_with_a_wrong_token_is_refused_and_reloads_nothing(running, headers, query):
    _, path, _, admin = running
    before = sample("scrubgate_config_reloads_total", result="success") + sample(
        "scrubgate_config_reloads_total", result="failure"
    )
    path.write_text(path.read_text().replace("hash-ids", "hash-ids-changed"))
    async with aiohttp.ClientSession() as client:
        async with client.post(admin + "/-/reload" + query, headers=headers) as response:
            assert response.status == 401
            assert TOKEN not in await response.text()
        async with client.get(
            admin + "/-/config", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as response:
            shown = await response.json()
    assert "hash-ids-changed" not in orjson.dumps(shown).decode()
    after = sample("scrubgate_config_reloads_total", result="success") + sample(
        "scrubgate_config_reloads_total", result="failure"
    )
    assert after == before


CANARY_KEY = "canary-hash-key-7f3a9c1e5b2d4f60"
CANARY_TOKEN = "canary-admin-token-e41b8d2c9a7f"
CANARY_PASSWORD = "canary-upstream-pw-5c0d"
CANARY_API_KEY = "canary-api-key-a9e8d7c6"

SECRET_SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0, token_file: admin.token}
hashing: {key_file: hash.key}
policies:
  p:
    rules:
      - {id: hash-ids, action: hash, select: userId}
      - {id: redact, action: redact}
routes:
  - name: secrets
    upstream: "http://vendor:${UPSTREAM_PASSWORD}@127.0.0.1:{port}"
    category: analytics
    policy: p
    headers:
      remove: [cookie, x-api-key]
    drop_response: {status: 200, body: "{}", content_type: application/json}
"""


async def test_secrets_appear_in_no_config_metrics_or_log_output(tmp_path, upstream):
    """The hash key (key_file), the admin token (token_file) and a password expanded from
    the environment never show in /-/config, /metrics or anything the process writes,
    through requests, refused and accepted reloads and a failed reload."""
    (tmp_path / "hash.key").write_text(CANARY_KEY + "\n")
    (tmp_path / "admin.token").write_text(CANARY_TOKEN + "\n")
    settings = SECRET_SETTINGS.replace("{port}", upstream.url.rsplit(":", 1)[1])
    environ = {"UPSTREAM_PASSWORD": CANARY_PASSWORD, "SCRUBGATE_API_KEY": CANARY_API_KEY}
    with scrubgate_process(settings, tmp_path, environ) as proxy:
        auth = {"Authorization": f"Bearer {CANARY_TOKEN}"}
        async with aiohttp.ClientSession() as client:
            for headers in ({"X-Api-Key": CANARY_API_KEY}, {"Authorization": "Bearer nope"}):
                async with client.post(
                    proxy.base + "/t", json={"userId": "u-1"}, headers=headers
                ) as response:
                    assert response.status == 200
            async with client.post(proxy.admin + "/-/reload") as response:
                assert response.status == 401
            async with client.post(proxy.admin + "/-/reload", headers=auth) as response:
                assert response.status == 200
            settings_file = tmp_path / "settings.yaml"
            settings_file.write_text(settings_file.read_text().replace("action: hash", "action: x"))
            async with client.post(proxy.admin + "/-/reload", headers=auth) as response:
                assert response.status == 400
                failed_reload = await response.text()
            async with client.get(proxy.admin + "/-/config", headers=auth) as response:
                config = await response.text()
            async with client.get(proxy.admin + "/metrics") as response:
                exposition = await response.text()
        assert upstream.arrivals and "X-Api-Key" not in upstream.arrivals[0].headers
        outputs = {
            "config": config,
            "metrics": exposition,
            "failed reload": failed_reload,
            "stderr": proxy.stderr,
        }
    assert "hash-ids" in config and "secrets" in exposition and proxy.stderr
    for name, text in outputs.items():
        for canary in (CANARY_KEY, CANARY_TOKEN, CANARY_PASSWORD, CANARY_API_KEY):
            assert canary not in text, f"{name} shows a secret"


async def test_client_authorization_gives_way_to_upstream_credentials(running, upstream):
    """With credentials in the upstream URL, a client's own Authorization header made the
    forward fail with a 500 (aiohttp refuses both); the route's credentials are sent."""
    _, _, base, _ = running
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            base + "/t", json={"n": 1}, headers={"Authorization": "Bearer client"}
        ) as response,
    ):
        assert response.status == 200
    (arrival,) = upstream.arrivals
    credentials = base64.b64encode(b"vendor-user:vendor-pass").decode()
    assert arrival.headers["Authorization"] == f"Basic {credentials}"
