"""A node as the task runs it, as real processes: the image's entrypoint script in front of a real `chroma run`."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.local import LOOPBACK, chroma_binary, free_port

ENTRYPOINT = Path(__file__).resolve().parents[1] / "chroma_image" / "writer-lock.sh"



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
def node(data: Path, wait_seconds: int = 60, **settings: str) -> Iterator[Node]:
    """One node as the task runs it: the entrypoint script, then Chroma on loopback with its data in `data`;
    `settings` are more of the entrypoint's variables."""
    port = free_port()
    config = data.parent / f"chroma-{port}.yaml"
    config.write_text(f'listen_address: "{LOOPBACK}"\nport: {port}\npersist_path: "{data}"\n')
    log_path = data.parent / f"node-{port}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHROMA_", "WRITER_LOCK_", "NODE_", "START_"))}
    env.update({"CHROMA_PERSIST_PATH": str(data), "WRITER_LOCK_CHROMA": chroma_binary(),
                "WRITER_LOCK_WAIT_SECONDS": str(wait_seconds), "WRITER_LOCK_REPORT_SECONDS": "1", **settings})
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
