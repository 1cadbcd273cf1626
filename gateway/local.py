"""Run a real Chroma server and the gateway on loopback, as subprocesses: for tests, benchmarks and local use.

Both are stopped (SIGTERM, then SIGKILL) when their context exits, whatever happened inside it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from gateway import settings as gw

LOOPBACK = "127.0.0.1"


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def wait_until(url: str, process: subprocess.Popen[bytes], timeout: float, what: str, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - loopback only
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready at {url} after {timeout} s:\n{log_path.read_text(errors='replace')}")


def chroma_binary() -> str:
    candidate = Path(sys.executable).parent / "chroma"
    return str(candidate) if candidate.exists() else "chroma"


@contextlib.contextmanager
def chroma_server(data_dir: Path, port: int | None = None, timeout: float = 60.0,
                  extra_config: str = "", env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """`chroma run CONFIG` on loopback with its data in data_dir, like the task runs it; `extra_config` is more
    YAML for Chroma's config file, `env` more environment (CHROMA_* variables from the caller's are dropped)."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir.parent / f"chroma-{port}.yaml"
    config.write_text(f'listen_address: "{LOOPBACK}"\nport: {port}\npersist_path: "{data_dir}"\n{extra_config}')
    log_path = data_dir.parent / f"chroma-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHROMA_")} | dict(env or {})
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([chroma_binary(), "run", str(config)], stdout=log_file,
                                   stderr=subprocess.STDOUT, env=full_env)
    server = Server(process, port, log_path)
    try:
        wait_until(f"{server.url}/api/v2/heartbeat", process, timeout, "chroma", log_path)
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def gateway_server(upstream_url: str, work_dir: Path, env: Mapping[str, str], port: int | None = None,
                   timeout: float = 30.0, wait_ready: bool = True) -> Iterator[Server]:
    """`python -m gateway` on loopback in front of upstream_url; `env` adds gateway settings (a token source)."""
    port = port or free_port()
    log_path = work_dir / f"gateway-{port}.log"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    full_env.update({gw.ENV_UPSTREAM_URL: upstream_url, gw.ENV_PORT: str(port), gw.ENV_LISTEN_ADDRESS: LOOPBACK,
                     gw.ENV_CONTROL_PORT: str(free_port()), gw.ENV_ACCESS_LOG_PORT: str(free_port(socket.SOCK_DGRAM)),
                     gw.ENV_RUNTIME_DIR: str(work_dir / f"gateway-{port}")})
    full_env.update(env)
    repo_root = str(Path(__file__).resolve().parents[1])
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [repo_root, full_env.get("PYTHONPATH")]))
    with log_path.open("wb") as log_file:
        process = subprocess.Popen([sys.executable, "-m", "gateway"], stdout=log_file, stderr=subprocess.STDOUT,
                                   env=full_env, cwd=repo_root)
    server = Server(process, port, log_path)
    try:
        path = gw.READINESS_PATH if wait_ready else gw.LIVENESS_PATH
        wait_until(f"{server.url}{path}", process, timeout, "gateway", log_path)
        yield server
    finally:
        server.stop()
