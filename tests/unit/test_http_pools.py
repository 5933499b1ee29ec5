"""The outbound client's connection pools (``lmsgate.http``): keep-alive connections are
reused by one account's calls, never shared with another account, and closed at shutdown."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from lmsgate.http import AddressGuard, HttpSettings, OutboundHttp


async def _server(opened: list[int], closed: list[int]) -> asyncio.Server:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            closed.append(1)
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_calls_reuse_one_accounts_connection_and_shutdown_closes_it() -> None:
    async def scenario() -> tuple[list[int], list[int], int]:
        opened: list[int] = []
        closed: list[int] = []
        server = await _server(opened, closed)
        port = server.sockets[0].getsockname()[1]
        outbound = OutboundHttp(HttpSettings(guard=AddressGuard.allowing(["127.0.0.1/32"])))
        ctx = SimpleNamespace(log_raw=lambda *a, **k: None)
        for account in ("acc-a", "acc-a", "acc-a", "acc-b"):
            session = outbound.session(account_id=account, provider="test", base_url=f"http://127.0.0.1:{port}/")
            assert (await session.request(ctx, "GET", "ping")).json() == {}
        pools = len(outbound._clients)
        await outbound.aclose()
        for _ in range(50):
            if len(closed) == len(opened):
                break
            await asyncio.sleep(0.01)
        server.close()
        await server.wait_closed()
        return opened, closed, pools

    opened, closed, pools = asyncio.run(scenario())
    assert len(opened) == 2 and pools == 2  # one connection per account, three calls on the first
    assert len(closed) == 2  # aclose closed them
