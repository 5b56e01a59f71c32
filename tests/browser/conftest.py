"""Fixtures of the browser tests: the real ``mosaic`` server in a subprocess, and a headless Chromium.

The server is started exactly like an administrator would: ``mosaic init`` then ``mosaic run``, on a
SQLite instance in a temporary folder and a free port of 127.0.0.1. The browser is the system's Chromium
(Debian's ``chromium`` package, which ``.ci/run`` installs); Playwright never downloads one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_ADMIN_PASSWORD = "browser-admin-pw-1"
STARTUP_TIMEOUT = 60
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server_env() -> dict[str, str]:
    env = {**os.environ, "MOSAIC_LANG": "en", "PYTHONUNBUFFERED": "1"}
    for name in ("DATABASE_URL", "MOSAIC_INSTANCE", "MOSAIC_ADDON_GROUPS", "MOSAIC_SECRET_KEY"):
        env.pop(name, None)
    return env


def _log_tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-limit:]
    except OSError:
        return ""


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class MosaicServer:
    def __init__(self, url: str, instance: Path, log: Path, admin_password: str):
        self.url = url
        self.instance = instance
        self.log = log
        self.admin_password = admin_password

    def log_tail(self) -> str:
        return _log_tail(self.log)


@pytest.fixture(scope="module")
def mosaic_server(tmp_path_factory):
    """A running ``mosaic run`` server on a fresh sales-edition instance; stopped after the module."""
    base = tmp_path_factory.mktemp("mosaic-server")
    instance = base / "instance"
    env = _server_env()
    init = subprocess.run(
        [
            sys.executable, "-m", "core.cli", "--instance", str(instance), "init",
            "--edition", "sales", "--admin-password", SERVER_ADMIN_PASSWORD, "--language", "en",
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    if init.returncode != 0:
        pytest.fail(f"`mosaic init` failed ({init.returncode}):\n{init.stdout}\n{init.stderr}")

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = base / "server.log"
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "core.cli", "--instance", str(instance), "run",
                "--host", "127.0.0.1", "--port", str(port), "--no-scheduler",
            ],
            cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"`mosaic run` exited with {process.returncode}:\n{_log_tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/login", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"`mosaic run` did not answer on {url} within {STARTUP_TIMEOUT}s:\n{_log_tail(log)}")
            time.sleep(0.2)
        yield MosaicServer(url, instance, log, SERVER_ADMIN_PASSWORD)
    finally:
        _stop(process)


def chromium_path() -> str:
    return shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium driven by Playwright (sync API); never a downloaded browser."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded CI machine is slow; failures still show fast locally
    executable = chromium_path()
    if not os.access(executable, os.X_OK):
        pytest.fail(f"Chromium is not installed at {executable}: `apt-get install chromium` (.ci/run does it)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium, mosaic_server):
    """A fresh browser context (no cookies) in English, with its base URL on the server."""
    context = chromium.new_context(base_url=mosaic_server.url, locale="en-US", viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()
