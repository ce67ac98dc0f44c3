"""A local fake of a platform's HTTP API: a real server on 127.0.0.1 that answers the few
endpoints a destination uses and records every request, so that tests reach no network.

    server = FakeServer(); server.route("POST", "/2/tweets", lambda request: (201, {"data": …}))
    server.script("POST", "/2/tweets", (429, {...}, {"x-rate-limit-reset": "…"}))  # answered once first
    server.requests   # [Request(method, path, query, headers, body, json)]
    server.stop(); server.start()   # gone for a while, then back on the same port
"""

import dataclasses
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def form(self) -> dict:
        return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(self.body.decode()).items()}


class FakeServer:
    def __init__(self):
        self.routes: dict[tuple[str, str], object] = {}
        self.scripted: dict[tuple[str, str], list] = {}
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.port = 0
        self.httpd = None
        self.running = False
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, answer) -> None:
        """`answer(request)` -> (status, json) or (status, json, headers). A path ending in "*"
        matches every path it starts."""
        self.routes[(method, path)] = answer

    def script(self, method: str, path: str, *answers) -> None:
        """Answers given, in order, before the route's own (a 429, a 401, …)."""
        self.scripted.setdefault((method, path), []).extend(answers)

    def of(self, method: str, path: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.method == method and (path is None or r.path == path)]

    def start(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def handle_any(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(self.command, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()},
                                  {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                with server.lock:
                    server.requests.append(request)
                    key = server.match(self.command, parts.path)
                    queue = server.scripted.get(key) if key else None
                    answer = queue.pop(0) if queue else None
                if answer is None:
                    answer = server.routes[key](request) if key else (404, {"error": "not found"})
                status, body, headers = (*answer, {})[:3]
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.running = True

    def match(self, method: str, path: str):
        if (method, path) in self.routes:
            return method, path
        for m, pattern in self.routes:
            if m == method and pattern.endswith("*") and path.startswith(pattern[:-1]):
                return m, pattern
        return None

    def stop(self) -> None:
        """Gone: connections are refused until start()."""
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.running = False
