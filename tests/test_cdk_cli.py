"""The pinned CDK CLI reads this app's cloud assembly (a mismatched CLI refuses newer schemas)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CDK = REPO / "node_modules" / ".bin" / "cdk"


@pytest.mark.synth
@pytest.mark.skipif(not CDK.exists(), reason="run `make setup` to install the pinned CDK CLI")
def test_cdk_ls_lists_every_stack_of_every_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CDK_", "AWS_"))}
    env["PATH"] = os.pathsep.join([str(CDK.parent), str(Path(shutil.which("python") or "python").parent),
                                   env.get("PATH", "")])
    result = subprocess.run([str(CDK), "ls", "--output", str(tmp_path / "cdk.out")], cwd=REPO, env=env,
                            capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    stacks = [line.split(" ")[0] for line in result.stdout.splitlines() if line.strip()]
    assert stacks == [f"{e}/{s}" for e in ("dev", "staging", "prod")
                      for s in ("Network", "Storage", "Compute", "Observability")]
