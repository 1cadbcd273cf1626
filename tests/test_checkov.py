"""checkov over every synthesized template: each finding is fixed or accepted here, once, with its reason.

checkov runs from its own virtualenv (`make setup` creates .venv-checkov): its pins clash with the test stack's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cdk_support import REPO, SynthesizedApp

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# check id -> (logical-id prefixes it is accepted on, why).
ACCEPTED: dict[str, tuple[tuple[str, ...], str]] = {
    "CKV_AWS_115": (("TokenRotationFunction", "CapacityCheckFunction", "TokenAgeCheckFunction",
                     "RecoveryPointFunction",
                     "CustomVpcRestrictDefaultSGCustomResourceProvider"),
                    "Reserved concurrency would be taken from the account's pool, and a new account (limit 10) cannot "
                    "reserve any: the deploy would fail. Each function runs once per schedule or rotation step."),
    "CKV_AWS_116": (("TokenRotationFunction", "CapacityCheckFunction", "TokenAgeCheckFunction",
                     "RecoveryPointFunction",
                     "CustomVpcRestrictDefaultSGCustomResourceProvider"),
                    "Failures are alarmed (rotation-failed, capacity-check-failed, token-age-check-failed, "
                    "recovery-point-failed) and the next run repeats the work; a dead-letter queue would hold nothing "
                    "worth replaying (a recovery point request is stale once it expires)."),
    "CKV_AWS_117": (("CapacityCheckFunction", "TokenAgeCheckFunction", "RecoveryPointFunction",
                     "CustomVpcRestrictDefaultSGCustomResourceProvider"),
                    "These call only AWS APIs (EFS, CloudWatch, Secrets Manager metadata, EC2, S3, AWS Backup); "
                    "inside the VPC they "
                    "would need more interface endpoints or NAT for no gain. The rotation function, which calls the "
                    "gateway, is in the VPC."),
    "CKV_AWS_173": (("TokenRotationFunction", "CapacityCheckFunction", "TokenAgeCheckFunction",
                     "RecoveryPointFunction"),
                    "The environment variables hold resource ids and names, never a secret; Lambda encrypts them at "
                    "rest with an AWS key. The token is read from Secrets Manager at run time."),
    "CKV_AWS_18": (("LoadBalancerAccessLogs", "RecoveryPointsRequests"),
                   "One bucket receives the load balancer's access logs, the other only the backup job's requests and "
                   "the node's answers (small JSON, no data); logging access to them into another bucket would "
                   "duplicate CloudTrail data events (same reason as cdk-nag S1)."),
    "CKV_AWS_2": (("LoadBalancerAlbHttp",),
                  "dev only: no certificate is configured there (staging and prod must have TLS, checked at synth); "
                  "the load balancer is internal and accepts the VPC only."),
    "CKV_AWS_103": (("LoadBalancerAlbHttp",),
                    "dev only, the same plain-HTTP listener as CKV_AWS_2; HTTPS listeners use the TLS 1.3 policy."),
}


def _findings(outdir: Path) -> list[tuple[str, str, str]]:
    """(check id, template file, logical id) of every failed check."""
    result = subprocess.run([str(CHECKOV), "--directory", str(outdir), "--framework", "cloudformation",
                             "--output", "json", "--quiet", "--compact", "--skip-download"],
                            capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: findings; anything else: checkov broke
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert reports and all(r["check_type"] == "cloudformation" for r in reports)
    assert sum(r["summary"]["passed"] for r in reports) > 100  # it really checked the templates
    return [(f["check_id"], Path(f["file_path"]).name, f["resource"].split(".", 1)[1])
            for r in reports for f in r["results"]["failed_checks"]]


@pytest.mark.synth
def test_checkov_has_no_finding_that_is_not_accepted_with_a_reason(synthesized: SynthesizedApp) -> None:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: run `make setup`")
    findings = _findings(synthesized.outdir)
    unexpected = [f for f in findings if f[0] not in ACCEPTED or not f[2].startswith(ACCEPTED[f[0]][0])]
    assert not unexpected, "\n".join(" ".join(f) for f in unexpected)
    stale = set(ACCEPTED) - {check for check, _, _ in findings}
    assert not stale, f"accepted but no longer found, remove: {sorted(stale)}"
    assert all(len(reason) >= 40 for _, reason in ACCEPTED.values())
