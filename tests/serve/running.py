"""A real ``npconv serve`` in a subprocess and a headless Chromium, for the serve tests that need them."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require

import npconv

#: Debian's Chromium (Playwright drives it through executable_path: browser downloads are not possible here).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # a synthetic webcam (a moving test pattern), allowed without asking
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def npconv_server(model_path, *options):
    """``npconv serve MODEL`` on a free port of 127.0.0.1, stopped on exit; yields its base URL."""
    import httpx2

    port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(npconv.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "npconv", "serve", str(model_path), "--port", str(port), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if process.poll() is not None:
                pytest.fail(f"npconv serve exited: {process.stdout.read()}")
            try:
                if httpx2.get(url + "/api/model", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("npconv serve did not answer within 30 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def chromium():
    """A headless Chromium driven by Playwright (skipped without them; a failure under CI)."""
    require(Path(CHROMIUM).is_file(), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require(sync_playwright is not None, "Playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
