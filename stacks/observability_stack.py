from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constructs.alarm_topic import AlarmTopic
from stacks.storage_stack import StorageStack


class ObservabilityStack(cdk.Stack):
    """Where alarms go: the environment's encrypted SNS topic and its e-mail subscriptions."""

    def __init__(self, scope: Construct, construct_id: str, *, config: EnvironmentConfig, storage: StorageStack,
                 **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description=f"Chroma {config.name}: alarm routing", **kwargs)
        self.alarm_topic = AlarmTopic(self, "Alarms", environment=config.name, key=storage.key,
                                      emails=config.alarm_emails).topic
