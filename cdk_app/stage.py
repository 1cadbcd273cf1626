"""One deployment environment: its Network, Storage, Compute and Observability stacks."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from cdk_app.config import EnvironmentConfig
from cdk_app.constants import SERVICE_NAME
from stacks.compute_stack import ComputeStack
from stacks.network_stack import NetworkStack
from stacks.observability_stack import ObservabilityStack
from stacks.storage_stack import StorageStack


class ChromaStage(cdk.Stage):
    def __init__(self, scope: Construct, config: EnvironmentConfig) -> None:
        super().__init__(scope, config.name, env=cdk.Environment(account=config.account, region=config.region))
        def names(stack_id: str) -> dict[str, str]:
            return {"stack_name": f"{SERVICE_NAME}-{config.name}-{stack_id.lower()}"}

        self.network = NetworkStack(self, "Network", config=config, **names("Network"))
        self.storage = StorageStack(self, "Storage", config=config, network=self.network, **names("Storage"))
        self.compute = ComputeStack(self, "Compute", config=config, network=self.network, storage=self.storage,
                                    **names("Compute"))
        self.observability = ObservabilityStack(self, "Observability", config=config, storage=self.storage,
                                                compute=self.compute, **names("Observability"))
        for key, value in config.tags.items():
            cdk.Tags.of(self).add(key, value)

    @property
    def stacks(self) -> tuple[cdk.Stack, ...]:
        return (self.network, self.storage, self.compute, self.observability)
