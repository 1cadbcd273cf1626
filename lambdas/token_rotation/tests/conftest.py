"""What the Lambda runtime and the CDK construct give the function, set before its module is imported."""

from __future__ import annotations

import os

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "chroma-test-token-rotation")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")  # no X-Ray daemon here
