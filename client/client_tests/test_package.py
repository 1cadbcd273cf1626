"""The package installs with pip from the repository, alone: the wheel holds the package (typed) and no tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.servers  # runs pip as a process
CLIENT = Path(__file__).resolve().parents[1]


def test_the_package_builds_as_a_wheel_with_its_pinned_chromadb(tmp_path: Path) -> None:
    source = tmp_path / "client"  # a copy: setuptools builds in the source tree
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                            "--wheel-dir", str(tmp_path), str(source)], capture_output=True, text=True, check=False,
                           timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("chroma_on_aws_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith("METADATA"))
    assert "chroma_on_aws_client/api.py" in names and "chroma_on_aws_client/py.typed" in names
    assert not any("client_tests" in n for n in names)
    assert "Requires-Dist: chromadb<1.6,>=1.5.9" in metadata
