"""A tiny threaded HTTP server that doubles run in-process on a free port."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FastHandler(BaseHTTPRequestHandler):
    """Answers in one TCP write (buffered, no Nagle): keep-alive clients see no 40 ms stalls."""

    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class BackgroundServer:
    """Runs ``handler_class`` on 127.0.0.1 in a daemon thread; ``url`` is its base URL."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler], host: str = "127.0.0.1", port: int = 0):
        self.server = QuietServer((host, port), handler_class)
        self.server.double = self  # type: ignore[attr-defined]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> BackgroundServer:
        self.thread = threading.Thread(target=self.server.serve_forever, name=type(self).__name__, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
