"""Who can reach the dashboard: this machine only by default; shared, only who has the link (its token)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.browser.serve import NO_CHROMIUM, ROOT, chromium, healthy, shot, streamlit_server, wait_idle

TOKEN = "test-token-4f180cf23ba0717ada0b"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_sh_serves_this_machine_only(tmp_path):
    venv = ROOT / ".venv"
    dev = venv / ".installed-requirements-dev.txt"
    runtime = venv / ".installed-requirements.txt"
    if dev.is_file() and not runtime.is_file():  # the test install holds the app's (requirements-dev includes it)
        runtime.write_text(dev.read_text())
    port = _free_port()
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(tmp_path / "cache"))
    log = (tmp_path / "start.log").open("w")
    proc = subprocess.Popen(["bash", "start.sh", "--server.port", str(port)], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        if not healthy(f"http://127.0.0.1:{port}", 120):
            pytest.fail("start.sh did not serve: " + (tmp_path / "start.log").read_text()[-2000:])
        listening = {
            c.laddr.ip
            for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening == {"127.0.0.1"}
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)
        log.close()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    cache = tmp_path_factory.mktemp("share-cache")
    env = {"YOLOLAB_SHARE": "1", "YOLOLAB_TOKEN": TOKEN, "YOLOLAB_CACHE_DIR": str(cache)}
    with streamlit_server(env, tmp_path_factory.mktemp("log")) as url:
        yield url, cache


@NO_CHROMIUM
@pytest.mark.browser
def test_shared_the_app_runs_only_for_who_has_the_link(shared_server):
    url, cache = shared_server
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        for visit in (url, f"{url}/benchmark", f"{url}/?token=wrong"):
            page.goto(visit)
            page.get_by_text("Ask the person who runs it for the link").wait_for(timeout=120_000)
            wait_idle(page)
            assert page.get_by_role("heading", name="Compare images").count() == 0
            assert "Model:" not in page.locator("[data-testid='stSidebar']").all_inner_texts().__str__()
        shot(page, "shared_without_token")
        assert not (cache / "models").exists()  # no model was resolved, exported or loaded for them

        page.goto(f"{url}/?token={TOKEN}")
        page.get_by_role("heading", name="Compare images").first.wait_for(timeout=120_000)
        page.get_by_text("Differences from ort:fp32").first.wait_for(timeout=300_000)
        wait_idle(page)
        assert "token=" not in page.url  # dropped from the address bar once checked
        page.reload()  # the session keeps its access
        page.get_by_role("heading", name="Compare images").first.wait_for(timeout=120_000)
        assert TOKEN not in page.content()
        shot(page, "shared_with_token")


def test_start_sh_share_serves_every_interface_and_prints_the_link(tmp_path):
    port = _free_port()
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(tmp_path / "cache"), YOLOLAB_TOKEN=TOKEN)
    log_path = tmp_path / "start.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(["bash", "start.sh", "--share", "--server.port", str(port)], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            if not healthy(f"http://127.0.0.1:{port}", 120):
                pytest.fail("start.sh --share did not serve: " + log_path.read_text()[-2000:])
            listening = {
                c.laddr.ip
                for p in [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
                for c in p.net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == port
            }
            assert listening & {"0.0.0.0", "::"}, listening
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(20)
    out = log_path.read_text()
    assert f":{port}/?token={TOKEN}" in out and out.count(TOKEN) == 1  # the start line, nowhere else


@pytest.fixture
def shared_env(app_env, monkeypatch):
    monkeypatch.setenv("YOLOLAB_SHARE", "1")
    monkeypatch.setenv("YOLOLAB_TOKEN", TOKEN)


def test_shared_models_page_offers_uploads_only_and_refuses_a_pickle_that_runs_code(shared_env, tmp_path):
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    pickle = tmp_path / "v8n.pt"
    YOLO("yolov8n.yaml").save(str(pickle))  # a real ultralytics checkpoint: unpickling it could run code
    at = AppTest.from_file(str(ROOT / "pages" / "models.py"), default_timeout=600)
    at.session_state["access:granted"] = True  # came with the link
    at.run()
    assert not at.exception
    assert "Path on the server" not in at.radio(key="models:kind").options
    assert not [c for c in at.checkbox if c.key == "models:trust"]
    assert not [t for t in at.text_input if t.key == "models:calib"]
    at.radio(key="models:kind").set_value("Upload .pt / .onnx")
    at.run()
    at.file_uploader(key="models:upload").set_value((pickle.name, pickle.read_bytes(), "application/octet-stream"))
    at.run()
    next(b for b in at.button if b.label == "Use this model").click()
    at.run()
    errors = [e.value for e in at.error]
    assert any("ultralytics checkpoint" in e and "does not load such files" in e for e in errors), errors


@pytest.mark.parametrize(
    ("address", "public"),
    [("10.0.0.5:6379", False), ("192.168.1.20:6379", False), ("127.0.0.1:6379", False), ("localhost:6379", False),
     ("ray://172.16.3.4:10001", False), ("8.8.8.8:6379", True), ("ray://1.1.1.1:10001", True)],
)  # fmt: skip
def test_a_cluster_on_a_public_address_is_named_as_such(address, public):
    from core.cluster import public_reason

    why = public_reason(address)
    assert bool(why) is public, why
    if public:
        assert "--allow-public-cluster" in why and "without a password" in why


def test_start_sh_share_refuses_a_public_cluster_in_one_line(tmp_path):
    env = dict(os.environ, YOLOLAB_CACHE_DIR=str(tmp_path / "cache"), YOLOLAB_TOKEN=TOKEN,
               YOLOLAB_CLUSTER="8.8.8.8:6379")  # fmt: skip
    done = subprocess.run(["bash", "start.sh", "--share", "--server.port", str(_free_port())], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused" in lines[0] and "8.8.8.8" in lines[0] and "--allow-public-cluster" in lines[0]
    assert TOKEN not in done.stdout + done.stderr  # refused before the link is printed


def test_the_app_itself_refuses_to_share_a_public_cluster_unless_allowed(shared_env, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("YOLOLAB_CLUSTER", "8.8.8.8:6379")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert [e.value for e in at.error] and "public address" in at.error[0].value
    assert not at.text_input and not at.button  # nothing of the app, not even the access page's form

    monkeypatch.setenv("YOLOLAB_ALLOW_PUBLIC_CLUSTER", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not [e for e in at.error if "public address" in e.value]
