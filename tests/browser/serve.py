"""What every browser test needs: a `streamlit run` of the app on loopback, Chromium, screenshots."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("YOLOLAB_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "artifacts" / "screenshots"
NO_CHROMIUM = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerURL(str):
    """The server's URL; ``pid``: its process (for tests that watch its threads and memory)."""

    pid: int


@contextlib.contextmanager
def streamlit_server(env: dict[str, str], log_dir: Path, clean: bool = False) -> Iterator[ServerURL]:
    """The app served on a free loopback port with ``env`` added to this process's; yields its URL.
    ``clean``: none of this process's ``YOLOLAB_*`` variables reach the app (a new user's machine)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true"]  # fmt: skip
    log = (log_dir / "streamlit.log").open("w")
    base = {k: v for k, v in os.environ.items() if not (clean and k.startswith("YOLOLAB_"))}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(base, **env), stdout=log, stderr=subprocess.STDOUT)
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    try:
        if not healthy(url, 60):
            pytest.fail("streamlit did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def healthy(url: str, seconds: float) -> bool:
    """Whether the Streamlit server at ``url`` answers its health check within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
                *extra_args,
            ],
        )
        try:
            yield b
        finally:
            b.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def wait_idle(page, timeout_s: float = 300) -> None:
    """Until Streamlit's 'running' indicator is gone."""
    page.wait_for_timeout(500)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_s * 1000
    )
