"""The node's writer lock with real processes: the image's entrypoint script in front of a real `chroma run`.

A second node on the same directory never starts Chroma while the first lives; it starts within 5 s of the first
exiting, whether the first got SIGTERM or kill -9; and it gives up with a clear message after its bounded wait.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.local import LOOPBACK, chroma_binary, free_port
from gateway.tests.test_proxy import _wait_for as wait_for

pytestmark = pytest.mark.servers

ENTRYPOINT = Path(__file__).resolve().parents[1] / "chroma_image" / "writer-lock.sh"
PROMPTLY_SECONDS = 5.0


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{self.port}/api/v2/heartbeat", timeout=1) as answer:
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def events(self) -> list[str]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [json.loads(line)["event"] for line in lines if line.startswith('{"logger": "writer-lock"')]


@contextlib.contextmanager
def node(data: Path, wait_seconds: int = 60) -> Iterator[Node]:
    """One node as the task runs it: the entrypoint script, then Chroma on loopback with its data in `data`."""
    port = free_port()
    config = data.parent / f"chroma-{port}.yaml"
    config.write_text(f'listen_address: "{LOOPBACK}"\nport: {port}\npersist_path: "{data}"\n')
    log_path = data.parent / f"node-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHROMA_", "WRITER_LOCK_"))}
    env.update({"CHROMA_PERSIST_PATH": str(data), "WRITER_LOCK_CHROMA": chroma_binary(),
                "WRITER_LOCK_WAIT_SECONDS": str(wait_seconds), "WRITER_LOCK_REPORT_SECONDS": "1"})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(["sh", str(ENTRYPOINT), "run", str(config)], stdout=log_file,
                                   stderr=subprocess.STDOUT, env=env)
    started = Node(process, port, log_path)
    try:
        yield started
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "node-data"
    directory.mkdir()
    return directory


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "kill -9"])
def test_a_second_writer_starts_only_after_the_first_exits(data: Path, stop: signal.Signals) -> None:
    with node(data) as first:
        wait_for(first.serving, timeout=60)
        with node(data) as second:
            # The second node waits, says why, and never starts Chroma while the first lives.
            wait_for(lambda: "writer_lock_wait" in second.events(), timeout=10)
            time.sleep(2)
            assert not second.serving() and second.process.poll() is None
            assert first.events() == ["writer_lock_acquired"]
            first.process.send_signal(stop)
            first.process.wait(10)
            exited = time.monotonic()
            wait_for(lambda: "writer_lock_acquired" in second.events(), timeout=PROMPTLY_SECONDS)
            wait_for(second.serving, timeout=60)
            assert time.monotonic() - exited < 60
            assert "writer_lock_acquired" in second.events()


def test_the_lock_is_held_by_chroma_itself_for_its_whole_life(data: Path) -> None:
    """The shell execs Chroma: one process, which holds the lock; nothing else is left to die and release it."""
    with node(data) as first:
        wait_for(first.serving, timeout=60)
        assert Path(f"/proc/{first.process.pid}/exe").resolve().name != "dash"
        holders = subprocess.run(["flock", "--nonblock", str(data / ".chroma-writer.lock"), "true"],
                                 check=False).returncode
        assert holders == 1  # taken


def test_a_second_writer_gives_up_after_its_bounded_wait(data: Path) -> None:
    with node(data) as first:
        wait_for(first.serving, timeout=60)
        with node(data, wait_seconds=3) as second:
            assert second.process.wait(15) == 75
            assert second.events()[-1] == "writer_lock_timeout"
            assert "not starting a second writer" in second.log_path.read_text()
            assert not second.serving()
        assert first.serving()
