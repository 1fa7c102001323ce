"""A local HTTP file server with Range support for the hub tests (127.0.0.1, a free port)."""
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Handler(BaseHTTPRequestHandler):
    """Serves files under ``server.root``. Knobs on the server: ``ignore_range`` (answer 200 with
    the whole file, as servers without Range support do) and ``cut_after`` (path -> n: send the
    full Content-Length header but only n body bytes, then drop the connection, once)."""

    def do_GET(self):  # noqa: N802 - http.server API
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = (server.root / self.path.lstrip("/")).resolve()
        if server.root not in path.parents or not path.is_file():
            self.send_error(404, "Not Found")
            return
        data = path.read_bytes()
        start, status = 0, 200
        wanted = self.headers.get("Range")
        if wanted and not server.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = server.cut_after.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args):  # keep pytest output clean
        pass


class FileServer:
    def __init__(self, root: Path):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.root = root.resolve()
        self.httpd.requests = []
        self.httpd.ignore_range = False
        self.httpd.cut_after = {}
        self.root = root
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def put(self, rel_path: str, data: bytes) -> str:
        """Serve ``data`` at ``rel_path``; returns its URL."""
        target = self.root / rel_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return f"{self.base}/{rel_path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def file_server(tmp_path):
    server = FileServer(tmp_path / "served")
    (tmp_path / "served").mkdir(exist_ok=True)
    yield server
    server.close()


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    """A fresh $DETZOO_HOME (so nothing touches the real cache) and no mirror from the caller."""
    home = tmp_path / "detzoo_home"
    monkeypatch.setenv("DETZOO_HOME", str(home))
    monkeypatch.delenv("DETZOO_ZOO_MIRROR", raising=False)
    return home
