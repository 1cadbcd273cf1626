"""The gateway's client token: a Secrets Manager secret encrypted with the CMK. Only the gateway reads it."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.constructs.stateful import pin_logical_id
from cdk_app.nag import acknowledge
from lambdas.token_rotation.function.settings import TOKEN_LENGTH


class GatewayTokenSecret(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, environment: str, key: kms.IKey,
                 removal_policy: cdk.RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.secret = secretsmanager.Secret(
            self, "Secret",
            secret_name=f"chroma/{environment}/gateway-token",
            description=f"Chroma {environment}: client token the gateway accepts (plain string)",
            encryption_key=key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=TOKEN_LENGTH, exclude_punctuation=True, include_space=False),
            removal_policy=removal_policy,
        )
        pin_logical_id(self.secret, "ChromaGatewayTokenSecret")
        acknowledge(self.secret, {
            "AwsSolutions-SMG4": "The secret is rotated: its RotationSchedule lives in the Compute stack beside the "
                                 "rotation function (it needs the function and the load balancer), out of this "
                                 "stack's sight.",
        })
