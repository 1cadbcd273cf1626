"""The HAProxy the tests run is the one the image ships: same Debian release, same series."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[1]


def test_image_and_tests_use_the_same_haproxy_series() -> None:
    series = (GATEWAY / "haproxy-version").read_text().strip()
    dockerfile = (GATEWAY / "Dockerfile").read_text()
    assert re.search(r"^FROM \S+-bookworm$", dockerfile, re.MULTILINE)  # Debian 12, like the test machines
    assert '"haproxy=$(cat /tmp/haproxy-version).*"' in dockerfile
    haproxy = shutil.which("haproxy")
    assert haproxy, "HAProxy is not installed: run `make setup`"
    version = subprocess.run([haproxy, "-v"], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"HAProxy version {re.escape(series)}\.\d+-\S+deb12", version), version


def test_image_runs_unprivileged_with_its_runtime_directory() -> None:
    dockerfile = (GATEWAY / "Dockerfile").read_text()
    assert "USER 10001" in dockerfile and "chown 10001 /run/gateway" in dockerfile
    assert "ENV GATEWAY_RUNTIME_DIR=/run/gateway" in dockerfile
