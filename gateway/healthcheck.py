"""`python -m gateway.healthcheck [ready]`: the container health check (the Chroma image has no curl).

Liveness by default: ECS should restart the task only when the gateway process itself stops serving.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from gateway.settings import DEFAULT_PORT, ENV_PORT, LIVENESS_PATH, READINESS_PATH


def check(path: str, port: int, timeout: float = 3.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str]) -> int:
    path = READINESS_PATH if argv[1:] == ["ready"] else LIVENESS_PATH
    return 0 if check(path, int(os.environ.get(ENV_PORT, DEFAULT_PORT))) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
