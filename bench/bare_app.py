"""The ceiling: a bare ASGI app that answers every request with a fixed 201 JSON body.

Served by the same server software and settings as lmsgate, it shows what Python on this
machine can do when the application costs nothing.
"""

from __future__ import annotations

BODY = (
    b'{"statusCode":201,"message":"Record created successfully.","timestamp":"2021-07-21T14:00:00.000Z",'
    b'"data":{"id":"01m8e2pe99jh4as6rj2sk0xbm1","remote_id":"01m8e2pe99jh4as6rj2sk0xbm1"}}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as a real endpoint must
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 201, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
