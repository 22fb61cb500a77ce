"""The extender's body reading (``server.read_body``) over a real aiohttp server: whole bodies, and 413 past the cap."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from accelplan_server.adapters.kubernetes import server


async def _post(body: bytes, chunks: int) -> tuple[int, bytes]:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await server.read_body(request))

    app = web.Application()
    app.router.add_post("/echo", echo)
    async with TestClient(TestServer(app)) as client:

        async def parts() -> AsyncIterator[bytes]:
            step = max(1, len(body) // chunks)
            for i in range(0, len(body), step):
                yield body[i : i + step]
                await asyncio.sleep(0)  # let the server read what has arrived: several chunks

        response = await client.post("/echo", data=parts() if chunks > 1 else body)
        return response.status, await response.read()


@pytest.mark.parametrize("chunks", [1, 64])
def test_a_body_reads_whole(chunks: int) -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    assert asyncio.run(_post(body, chunks)) == (200, body)


def test_an_empty_body_reads_empty() -> None:
    assert asyncio.run(_post(b"", 1)) == (200, b"")


def test_a_body_past_the_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "MAX_BODY_BYTES", 1000)
    status, _ = asyncio.run(_post(b"x" * 5000, 10))
    assert status == 413
