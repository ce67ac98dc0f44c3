"""The request size cap and its deadline: bodies over a few KB, or that take too long to arrive,
are refused before anything reads them whole."""

import asyncio

from starlette.responses import JSONResponse


class BodyLimit:
    """Refuses request bodies over `limit` bytes with 413 before anything parses them. It counts
    what arrives rather than trusting Content-Length, so a chunked body is capped too. A body not
    complete within `timeout_s` of the headers gets 408: a client trickling it in holds a
    connection as a slowloris does (web/connections.py covers the headers)."""

    def __init__(self, app, limit: int, timeout_s: float = 10.0):
        self.app, self.limit, self.timeout_s = app, limit, timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await self.refuse(scope, receive, send)
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left before it finished sending: nobody to answer
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > self.limit:
                        return await self.refuse(scope, receive, send)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            detail = f"the request body did not arrive within {self.timeout_s:g} s"
            response = JSONResponse({"detail": detail}, status_code=408, headers={"Connection": "close"})
            return await response(scope, receive, send)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # later reads only wait for a disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def refuse(self, scope, receive, send):
        response = JSONResponse({"detail": f"the request body is over {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)
