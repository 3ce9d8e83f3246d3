"""The raw path behind HTTP and nothing else: the floor any HTTP service on this machine stands on.

The overhead benchmark compares the gateway with the raw path in-process (issue 19's target).
The difference mixes two costs: crossing HTTP at all (a client, a socket, a server, JSON), which
any service pays, and the gateway's own work (authentication, rate limit, PII redaction, the
audit record, metrics, the access-checked store). This server pays only the first: it answers
``POST /v1/search`` with the raw path's two calls (the same embedder, the same hybrid query and
filter, one model run per question unless ``--joined``) in a worker thread, on uvicorn with
uvloop and httptools as the gateway runs, and returns the hits' properties as JSON. No key is
checked.

Started by ``benchmarks.gateway_overhead --floor`` as a child process, so its CPU is its own::

    python -m benchmarks.http_floor --group bench --port 8091
"""

from __future__ import annotations

import argparse
import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

Scope = dict[str, Any]
Receive = Any
Send = Any


class FloorApp:
    """A bare ASGI app: ``GET /healthz`` and ``POST /v1/search`` (body ``{"query": ...}``)."""

    def __init__(self, search: Any, threads: int = 64) -> None:
        self._search = search
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="floor")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/healthz":
            await _respond(send, 200, b'{"status":"ok"}')
            return
        if scope["path"] != "/v1/search" or scope["method"] != "POST":
            await _respond(send, 404, b'{"detail":"not found"}')
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            question = str(json.loads(body)["query"])
        except (ValueError, KeyError, TypeError):
            await _respond(send, 400, b'{"detail":"send {\\"query\\": \\"...\\"}"}')
            return
        loop = asyncio.get_running_loop()
        hits = await loop.run_in_executor(self._pool, self._search.hits, question)
        await _respond(send, 200, json.dumps({"results": hits}, default=str).encode())


async def _respond(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, help="the access group the index was loaded with")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--joined",
        action="store_true",
        help="concurrent questions share model runs (as the benchmark's --raw-embedding joined)",
    )
    args = parser.parse_args()

    import uvicorn

    from benchmarks.gateway_overhead import RawSearch
    from gateway.container import build_components
    from gateway.offline import enforce_offline_env
    from gateway.settings import Settings

    enforce_offline_env()
    components = build_components(Settings())
    components.warm_up()
    search = RawSearch(components, args.group, joined=args.joined)
    uvicorn.run(
        FloorApp(search),
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        loop="uvloop",
        http="httptools",
    )


if __name__ == "__main__":
    main()
