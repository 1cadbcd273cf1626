"""What the Lambda runtime and the CDK construct give the function, set before its module is imported."""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chroma-test-recovery-point")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
