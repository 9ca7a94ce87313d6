"""proxy/admin.py: masking of /-/config, the token check, and the endpoints of one
process served by a real aiohttp server on 127.0.0.1."""

import asyncio

import aiohttp
import orjson
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from proxy.admin import ProcessAdmin, authorized, mask_secrets
from proxy.state import SettingsHolder

SETTINGS = """
version: 1
listeners: [{name: main, port: 0}]
admin: {port: 0, token_env: ADMIN_TOKEN}
routes: [{name: r, upstream: "http://user:pw@127.0.0.1:9/x", category: traces, mode: forward}]
"""


def test_secret_looking_keys_and_url_userinfo_are_masked():
    masked = mask_secrets(
        {
            "api_key": "k1",
            "nested": [{"client_secret": "s1", "password": "p1", "count": 3}],
            "upstream": "https://user:pw@vendor.example/ingest",
            "token_env": "NAME_OF_A_VARIABLE",
            "plain": "value",
        }
    )
    assert masked == {
        "api_key": "***",
        "nested": [{"client_secret": "***", "password": "***", "count": 3}],
        "upstream": "https://***@vendor.example/ingest",
        "token_env": "NAME_OF_A_VARIABLE",
        "plain": "value",
    }


secret_keys = st.sampled_from(["token", "x_secret", "PASSWORD", "passwd", "credential", "apikey"])


@given(st.dictionaries(secret_keys, st.text(min_size=1)), st.dictionaries(st.text(), st.text()))
def test_values_under_secret_keys_never_survive(secrets, other):
    masked = mask_secrets({"outer": [{**other, **secrets}]})
    for key in secrets:
        assert masked["outer"][0][key] == "***"


class FakeRequest:
    def __init__(self, authorization: str | None) -> None:
        self.headers = {"Authorization": authorization} if authorization is not None else {}


def test_token_check():
    assert authorized(FakeRequest(None), None)  # type: ignore[arg-type]
    assert authorized(FakeRequest("Bearer t0ken"), "t0ken")  # type: ignore[arg-type]
    for wrong in (None, "", "Bearer", "Bearer t0ke", "bearer t0ken", "Basic t0ken", "t0ken"):
        assert not authorized(FakeRequest(wrong), "t0ken")  # type: ignore[arg-type]


async def test_process_admin_endpoints(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(SETTINGS)
    holder = SettingsHolder(str(path), {"ADMIN_TOKEN": "admin-token-1234"})
    ready = asyncio.Event()
    runner = web.AppRunner(ProcessAdmin(holder, ready).app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    token = {"Authorization": "Bearer admin-token-1234"}
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(base + "/-/ready") as response:
                assert (response.status, await response.json()) == (503, {"status": "starting"})
            ready.set()
            async with client.get(base + "/-/ready") as response:
                assert response.status == 200
            async with client.get(base + "/-/healthy") as response:
                assert await response.json() == {"status": "healthy"}
            async with client.get(base + "/metrics") as response:
                assert b"scrubgate_requests_total" in await response.read()
            async with client.post(base + "/-/reload") as response:
                assert response.status == 401
            async with client.post(base + "/-/reload", headers=token) as response:
                assert await response.json() == {"status": "reloaded", "changed": False}
            async with client.get(base + "/-/config", headers=token) as response:
                body = await response.read()
            assert b"user:pw" not in body and b"admin-token-1234" not in body
            config = orjson.loads(body)
            assert config["settings"]["routes"][0]["upstream"] == "http://***@127.0.0.1:9/x"
            path.write_text(SETTINGS.replace("version: 1", "version: 2"))
            async with client.post(base + "/-/reload", headers=token) as response:
                answer = await response.json()
            assert response.status == 400 and answer["status"] == "failed"
            assert "version" in answer["errors"][0]
    finally:
        await runner.cleanup()
