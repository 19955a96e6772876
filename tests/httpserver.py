"""A real HTTP server on 127.0.0.1 for download tests, with faults on request.

Serves in-memory files with Range support (``bytes=N-`` -> 206), and can misbehave per path:
close the socket after N body bytes on the first request (``break_after``) and optionally answer
every later request with an error status (``after_break``), answer the first k requests with an
error status (``fail_first``), go quiet for a while after N bytes (``stall``), or ignore Range
headers (``ignore_range``).
Every request is logged (path, Range header, status) so tests can assert what the client did.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    path: str
    range: str | None
    status: int


@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    break_after: dict[str, int] = field(default_factory=dict)  # path -> body bytes, first time
    fail_first: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (k, status)
    after_break: dict[str, int] = field(default_factory=dict)  # path -> status once it broke
    broken: set[str] = field(default_factory=set)
    stall: dict[str, tuple[int, float]] = field(default_factory=dict)  # path -> (bytes, s), once
    ignore_range: bool = False
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        range_header = self.headers.get("Range")
        with state.lock:
            data = state.files.get(path)
            fail = state.fail_first.get(path)
            if fail and fail[0] > 0:
                state.fail_first[path] = (fail[0] - 1, fail[1])
            cut = state.break_after.pop(path, None)
            stall = state.stall.pop(path, None)
            gone = path in state.broken and state.after_break.get(path)
            if cut is not None:
                state.broken.add(path)
        if gone:
            return self._answer(path, range_header, gone, b"gone\n")
        if fail and fail[0] > 0:
            return self._answer(path, range_header, fail[1], b"try again later\n")
        if data is None:
            return self._answer(path, range_header, 404, b"not found\n")
        start = 0
        if range_header and not state.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-", 1)[0])
            if start >= len(data):
                extra = {"Content-Range": f"bytes */{len(data)}"}
                return self._answer(path, range_header, 416, b"", extra)
        body = data[start:]
        status, extra = 200, {}
        if start:
            status = 206
            extra["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self._answer(path, range_header, status, body, extra, cut=cut, stall=stall)

    def _answer(self, path, range_header, status, body, extra=None, cut=None, stall=None) -> None:
        self.server.state.requests.append(Request(path, range_header, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if stall is not None:  # send the first bytes, then go quiet (the client should time out)
            self.wfile.write(body[: stall[0]])
            self.wfile.flush()
            time.sleep(stall[1])
            with contextlib.suppress(OSError):
                self.wfile.write(body[stall[0] :])
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState

    def url(self, path: str = "/") -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}{path}"


@contextlib.contextmanager
def serve(files: dict[str, bytes] | None = None) -> Iterator[_Server]:
    """Start a server on 127.0.0.1 (a free port) in a thread; stop it on exit."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.state = ServerState(files=dict(files or {}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port_url(path: str = "/x") -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
