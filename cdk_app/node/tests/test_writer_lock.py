"""The node's writer lock with real processes: the image's entrypoint script in front of a real `chroma run`.

A second node on the same directory never starts Chroma while the first lives; it starts within 5 s of the first
exiting, whether the first got SIGTERM or kill -9; it gives up with a clear message after its bounded wait; and a
lost lock (lock file removed or replaced, writes through the locked descriptor failing) stops Chroma.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from cdk_app.node.tests.nodes import node
from gateway.tests.test_proxy import _wait_for as wait_for

pytestmark = pytest.mark.servers

PROMPTLY_SECONDS = 5.0

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
            assert first.events() == ["writer_lock_acquired", "chroma_starting"]
            first.process.send_signal(stop)
            first.process.wait(10)
            exited = time.monotonic()
            wait_for(lambda: "writer_lock_acquired" in second.events(), timeout=PROMPTLY_SECONDS)
            wait_for(second.serving, timeout=60)
            assert time.monotonic() - exited < 60
            assert "writer_lock_acquired" in second.events()


def test_the_lock_is_held_by_chroma_itself_for_its_whole_life(data: Path) -> None:
    """The shell execs Chroma, which holds the lock (with its watchdog, which exits within a second of Chroma)."""
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


@pytest.mark.parametrize("lose", ["remove the lock file", "replace the lock file"])
def test_chroma_is_stopped_when_its_lock_file_is_removed_or_replaced(data: Path, lose: str) -> None:
    """A new lock file would let a second node lock it while this one writes: the watchdog stops Chroma first."""
    with node(data, WRITER_LOCK_HEARTBEAT_SECONDS="1", WRITER_LOCK_STOP_SECONDS="5") as first:
        wait_for(first.serving, timeout=60)
        lock = data / ".chroma-writer.lock"
        lock.unlink()
        if lose == "replace the lock file":
            lock.write_text("")
        assert first.process.wait(15) is not None
        assert "writer_lock_lost" in first.events()
        assert "the lock file was removed or replaced" in first.log_path.read_text()
        assert not first.serving()


def test_chroma_is_stopped_when_the_locked_descriptor_cannot_be_written(data: Path) -> None:
    """What Linux does to a descriptor whose NFSv4 lock was lost (I/O fails), played by /dev/full (every write
    fails): the watchdog's heartbeat fails and Chroma is stopped, SIGTERM first."""
    with node(data, WRITER_LOCK_FILE="/dev/full", WRITER_LOCK_HEARTBEAT_SECONDS="3",
              WRITER_LOCK_STOP_SECONDS="5") as first:
        wait_for(first.serving, timeout=60)
        assert first.process.wait(15) == -signal.SIGTERM or first.process.returncode == 0
        assert first.events()[-1] == "writer_lock_lost"
        assert "writing through the locked descriptor failed" in first.log_path.read_text()
