"""A local threaded HTTP(S) server with scripted answers, for the tests and the benchmarks."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Answer:
    """One scripted HTTP answer."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between 1-byte chunks of the body (a slow server)
    chunked: bool = False  # no Content-Length


Route = Answer | list[Answer] | Callable[[dict[str, list[str]]], Answer]


class LocalServer:
    """Serves ``routes[path]`` on 127.0.0.1: an Answer, a list answered in turn (last one
    repeats), or a function of the query string; anything else is a 404. Records hits,
    queries and request headers per path.

    ``tls`` serves HTTPS with that context; ``backlog`` is the listen queue (raise it for
    many clients connecting at once).
    """

    def __init__(self, *, tls: ssl.SSLContext | None = None, backlog: int = 5) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.queries: dict[str, list[dict[str, list[str]]]] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # headers and body go out as two writes: without this, Nagle + delayed ACK
                # add 40 ms to every answer
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                answer = server.answer(parts.path, query, dict(self.headers))
                if answer.delay:
                    time.sleep(answer.delay)
                try:
                    self.send_response(answer.status)
                    for k, v in answer.headers.items():
                        self.send_header(k, v)
                    if answer.chunked or answer.drip:
                        self.send_header("Connection", "close")
                    else:
                        self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    if answer.drip:
                        for i in range(len(answer.body)):
                            self.wfile.write(answer.body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(answer.drip)
                    else:
                        self.wfile.write(answer.body)
                    if answer.chunked or answer.drip:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = backlog

            def handle_error(self, request: object, address: object) -> None:
                pass  # clients hang up on purpose

        self.httpd = Server(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Answer:
        with self.lock:
            n = self.hits[path]
            self.hits[path] += 1
            self.queries.setdefault(path, []).append(query)
            self.headers[path] = headers
            route = self.routes.get(path)
        if route is None:
            return Answer(b"not found", 404)
        if isinstance(route, list):
            return route[min(n, len(route) - 1)]
        if callable(route):
            return route(query)
        return route

    def url(self, path: str) -> str:
        return self.base + path

    def reset(self) -> None:
        with self.lock:
            self.routes.clear()
            self.hits.clear()
            self.queries.clear()
            self.headers.clear()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
