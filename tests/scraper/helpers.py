"""Test helpers: a local threaded HTTP server with scripted answers, images made in code."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image
from skimage import data as skdata

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_HOST = "https://img.example.com"  # image URLs in the recorded fixtures


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
    """Serves ``routes[path]``: an Answer, a list answered in turn (last one repeats), or a
    function of the query string. Records hits, queries and request headers per path."""

    def __init__(self) -> None:
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

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # clients hang up on purpose
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
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


PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins", "horse", "moon")


def photo(name: str, width: int = 320) -> Image.Image:
    """A skimage sample photograph scaled to ``width`` (RGB or L)."""
    array = getattr(skdata, name)()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    image = Image.fromarray(array)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    height = round(image.height * width / image.width)
    return image.resize((width, height), Image.Resampling.BILINEAR)


def encode(image: Image.Image, fmt: str = "JPEG", **kw: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def jpeg(name: str, width: int = 320, quality: int = 90) -> bytes:
    return encode(photo(name, width).convert("RGB"), "JPEG", quality=quality)


def fixture(name: str, base: str | None = None) -> bytes:
    """A recorded-format fixture, with image URLs pointed at ``base`` if given."""
    body = (FIXTURES / name).read_bytes()
    return body.replace(FIXTURE_HOST.encode(), base.encode()) if base else body
