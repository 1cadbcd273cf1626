"""Lambda entry point: parse the Secrets Manager event, run one rotation step, log and measure it."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import SecretsManagerEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from .gateway_probe import GatewayProbe
from .rotation import Rotator
from .settings import METRICS_NAMESPACE, RotationSettings

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=METRICS_NAMESPACE)


def build_rotator(env: Mapping[str, str] = os.environ) -> Rotator:
    settings = RotationSettings.from_env(env)
    probe = GatewayProbe(host=settings.endpoint_host, port=settings.endpoint_port,
                         tls_server_name=settings.tls_server_name)
    return Rotator(client=boto3.client("secretsmanager"), probe=probe, wait_seconds=settings.wait_seconds,
                   pending_max_age_seconds=settings.pending_max_age_seconds)


@metrics.log_metrics
@tracer.capture_lambda_handler
@logger.inject_lambda_context
@event_source(data_class=SecretsManagerEvent)
def lambda_handler(event: SecretsManagerEvent, context: LambdaContext) -> None:
    step = event.step
    logger.append_keys(step=step, secret_id=event.secret_id, version=event.client_request_token)
    metrics.add_dimension(name="Step", value=step)
    started = time.perf_counter()
    try:
        outcome = build_rotator().rotate(step, event.secret_id, event.client_request_token)
    except Exception:
        metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
        logger.exception("rotation step failed")
        raise
    finally:
        metrics.add_metric(name="StepDuration", unit=MetricUnit.Milliseconds,
                           value=(time.perf_counter() - started) * 1000)
    metrics.add_metric(name="StepSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("rotation step done", extra={"outcome": outcome})
