"""`streamlit run app.py` on a free loopback port, for the benchmarks that drive the app in a browser."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    started: float  # time.perf_counter() when the process was started
    up_s: float  # seconds until /_stcore/health answered


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def app_server(
    model: Path | str,
    calib: Path,
    cache: Path,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
    options: list[str] | None = None,
) -> Iterator[AppServer]:
    """The dashboard with ``model`` and ``calib`` preset and artefacts in ``cache``; stopped on exit.

    ``env``: more environment variables; ``options``: more ``streamlit run`` options (``--server.…``).
    """
    port = _free_port()
    env = dict(
        os.environ, YOLOLAB_MODEL=str(model), YOLOLAB_CALIB_DIR=str(calib), YOLOLAB_CACHE_DIR=str(cache), **(env or {})
    )
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += options or []
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                if time.perf_counter() - started > timeout_s:
                    raise SystemExit(f"the server did not come up within {timeout_s:.0f} s") from None
                time.sleep(0.05)
        yield AppServer(url, proc, started, time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait(20)
