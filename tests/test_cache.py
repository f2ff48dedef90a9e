import json
import subprocess
import sys
from pathlib import Path

import pytest

from core.cache import cached_build, read_verified, sha256_file


def test_builds_once_then_serves_from_cache(tmp_path):
    calls = []

    def build(tmp: Path) -> None:
        calls.append(tmp)
        tmp.write_bytes(b"artefact")

    target = tmp_path / "a.bin"
    first = cached_build(target, build, {"k": 1})
    second = cached_build(target, build, {"k": 1})
    assert len(calls) == 1 and first.sha256 == second.sha256 == sha256_file(target)
    assert json.loads(target.with_name("a.bin.json").read_text())["k"] == 1


def test_a_tampered_or_truncated_artefact_is_detected_and_rebuilt(tmp_path):
    target = tmp_path / "a.bin"
    cached_build(target, lambda p: p.write_bytes(b"good artefact"), {})
    target.write_bytes(b"good art")  # truncated behind the cache's back
    assert read_verified(target) is None
    rebuilt = cached_build(target, lambda p: p.write_bytes(b"good artefact"), {})
    assert target.read_bytes() == b"good artefact" and rebuilt.sha256 == sha256_file(target)


def test_a_failed_build_leaves_nothing_that_is_later_used(tmp_path):
    target = tmp_path / "a.bin"

    def boom(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cached_build(target, boom, {})
    assert not target.exists() and read_verified(target) is None
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


_CHILD = """
import sys, time
from pathlib import Path
from core.cache import cached_build

target, log = Path(sys.argv[1]), Path(sys.argv[2])

def build(tmp):
    with log.open("a") as f:
        f.write("build\\n")
    time.sleep(0.5)
    tmp.write_bytes(b"x" * 1000)

cached_build(target, build, {})
"""


def test_two_processes_building_the_same_artefact_build_it_once(tmp_path):
    # separate interpreters (not multiprocessing: its spawn re-imports whatever __main__ the runner has)
    target, log = tmp_path / "shared.bin", tmp_path / "log.txt"
    root = Path(__file__).resolve().parent.parent
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, str(target), str(log)], cwd=root) for _ in range(2)]
    assert [p.wait(60) for p in procs] == [0, 0]
    assert log.read_text().count("build") == 1
    assert read_verified(target) is not None
