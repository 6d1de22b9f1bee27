"""fetch(): verified downloads against a local HTTP server on 127.0.0.1 (never the internet)."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from npconv.data import REMOTE, DownloadError, fetch
from npconv.errors import DataError

PAYLOAD = b"npconv test payload\n" * 100
GOOD = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server(monkeypatch):
    """Serve ``/data.bin`` (PAYLOAD) and 404 for anything else; count requests."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            if self.path != "/data.bin":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)
    assert len(requests) <= 3  # bounded: no retries, no loops


def test_success_then_reuse_without_downloading(server, tmp_path):
    base, requests = server
    path = fetch(f"{base}/data.bin", GOOD, dest_dir=tmp_path)
    assert path == tmp_path / "data.bin" and path.read_bytes() == PAYLOAD
    assert fetch(f"{base}/data.bin", GOOD.upper(), dest_dir=tmp_path) == path
    assert len(requests) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]  # no temporary files left


def test_checksum_mismatch_saves_nothing(server, tmp_path):
    base, _ = server
    with pytest.raises(DataError, match="sha256") as info:
        fetch(f"{base}/data.bin", "0" * 64, dest_dir=tmp_path, filename="x.bin")
    assert "127.0.0.1" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_http_404_names_the_url_and_the_manual_fix(server, tmp_path):
    base, _ = server
    with pytest.raises(DownloadError, match="404") as info:
        fetch(f"{base}/missing.h5", GOOD, dest_dir=tmp_path)
    assert f"{base}/missing.h5" in str(info.value) and "place it at" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_existing_different_file_is_never_destroyed(server, tmp_path):
    base, requests = server
    precious = tmp_path / "data.bin"
    precious.write_bytes(b"the user's own file")
    with pytest.raises(DataError, match="already there"):
        fetch(f"{base}/data.bin", GOOD, dest_dir=tmp_path)
    assert precious.read_bytes() == b"the user's own file" and not requests


def test_a_checksum_is_required():
    with pytest.raises(ValueError, match="sha256"):
        fetch("http://127.0.0.1:9/x", None)
    assert all(r.url.startswith("https://") for r in REMOTE.values())
