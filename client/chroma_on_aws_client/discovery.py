"""Where an environment's endpoint and token are: its SSM parameters under /chroma/<env>/ (published by the CDK
app), else its stacks' outputs. Also the gateway's grace for the previous token, from which the refresh schedule
is derived (a client that re-reads the token more often than the grace never holds a token the gateway refuses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ENDPOINT_URL = "endpoint-url"
TOKEN_SECRET_ARN = "token-secret-arn"  # noqa: S105 - a parameter name
PREVIOUS_TOKEN_GRACE_SECONDS = "previous-token-grace-seconds"  # noqa: S105 - a parameter name
NAMES = (ENDPOINT_URL, TOKEN_SECRET_ARN, PREVIOUS_TOKEN_GRACE_SECONDS)
# Re-read the token at least this often, and at most every 15 s.
MAX_REFRESH_SECONDS, MIN_REFRESH_SECONDS = 300.0, 15.0


class DiscoveryError(RuntimeError):
    """The environment's endpoint or token could not be found; the message says where it looked."""


@dataclass(frozen=True)
class Environment:
    url: str
    secret_id: str
    previous_token_grace_seconds: float | None
    source: str

    @property
    def token_refresh_seconds(self) -> float:
        """A quarter of the grace (a refresh may fail a few times), between 15 s and 5 minutes."""
        if self.previous_token_grace_seconds is None:
            return 60.0
        return min(MAX_REFRESH_SECONDS, max(MIN_REFRESH_SECONDS, self.previous_token_grace_seconds / 4))


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def discover(environment: str, ssm: Any, cloudformation: Any) -> Environment:
    prefix = f"/chroma/{environment}"
    found = {p["Name"].rsplit("/", 1)[1]: p["Value"]
             for p in ssm.get_parameters(Names=[f"{prefix}/{n}" for n in NAMES])["Parameters"]}
    source = f"SSM parameters {prefix}/"
    if ENDPOINT_URL not in found or TOKEN_SECRET_ARN not in found:
        found, source = {}, f"outputs of stacks chroma-{environment}-compute and -storage"
        for stack in ("compute", "storage"):
            try:
                described = cloudformation.describe_stacks(StackName=f"chroma-{environment}-{stack}")["Stacks"][0]
            except Exception:  # noqa: S112 - a missing stack: the message below names both places
                continue
            outputs = {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
            found.update({n: outputs[_camel(n)] for n in NAMES if _camel(n) in outputs})
    if ENDPOINT_URL not in found or TOKEN_SECRET_ARN not in found:
        raise DiscoveryError(f"environment {environment!r}: neither SSM parameters {prefix}/{{{ENDPOINT_URL},"
                             f"{TOKEN_SECRET_ARN}}} nor the outputs of stacks chroma-{environment}-compute/-storage "
                             "were found (is it deployed in this account and region?)")
    grace = found.get(PREVIOUS_TOKEN_GRACE_SECONDS)
    return Environment(found[ENDPOINT_URL], found[TOKEN_SECRET_ARN], float(grace) if grace else None, source)
