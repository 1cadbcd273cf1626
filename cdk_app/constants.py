"""Constants shared by the CDK constructs, the gateway and the operator tooling.

One place for every port, path and name that more than one unit must agree on.
"""

from gateway import settings as gateway_settings
from gateway.snapshot import LATEST as LATEST_COPY

SERVICE_NAME = "chroma"

# Chroma listens on loopback inside the task; only the gateway reaches it.
CHROMA_PORT = 8000
CHROMA_LISTEN_ADDRESS = "127.0.0.1"
CHROMA_DATA_PATH = "/data"
CHROMA_CONFIG_PATH = "/config.yaml"
# Chroma's own default request body limit (max_payload_size_bytes); the gateway enforces the same.
CHROMA_MAX_PAYLOAD_BYTES = gateway_settings.DEFAULT_MAX_BODY_BYTES

# The gateway is the only port the load balancer can reach; its own settings module is the source of truth.
GATEWAY_PORT = gateway_settings.DEFAULT_PORT
GATEWAY_READINESS_PATH = gateway_settings.READINESS_PATH
# The old task's stop path, in the order ECS runs it: the load balancer deregisters the task and waits this long for
# requests in flight; then the gateway (it depends on Chroma, so ECS stops it first) gets SIGTERM, drains and is
# killed at its stop timeout; then Chroma gets SIGTERM (it exits in under a second, measured) and is killed only at
# its stop timeout. Worst case until the old Chroma has exited and released the writer lock: the sum.
ALB_DEREGISTRATION_DELAY_SECONDS = 30
GATEWAY_STOP_TIMEOUT_SECONDS = 30
CHROMA_STOP_TIMEOUT_SECONDS = 30
OLD_WRITER_STOP_SECONDS = ALB_DEREGISTRATION_DELAY_SECONDS + GATEWAY_STOP_TIMEOUT_SECONDS + CHROMA_STOP_TIMEOUT_SECONDS
# The node's writer lock (cdk_app/node/chroma_image/writer-lock.sh): a starting task waits for it at most the health
# check grace minus this, the time left for Chroma to start and answer once it holds the lock.
WRITER_LOCK_STARTUP_SECONDS = 30


def writer_lock_wait_seconds(health_check_grace_seconds: int) -> int:
    return health_check_grace_seconds - WRITER_LOCK_STARTUP_SECONDS


# A task volume both node containers mount: the entrypoint announces the writer lock there and the gateway answers
# with the start check's verdict (gateway/node_start.py).
NODE_START_PATH = "/run/node-start"

# POSIX identity the EFS access point forces on every file operation of a Chroma node.
EFS_POSIX_UID = 1000
EFS_POSIX_GID = 1000
EFS_ACCESS_POINT_ROOT = "/chroma/primary"
# Where every node's directory lives on its own file system (the primary's is EFS_ACCESS_POINT_ROOT).
NODES_ROOT = "/chroma"
# Quiesced copies of the node's directory (gateway/snapshot.py), beside it on the same file system.
RECOVERY_POINTS_ROOT = "/chroma/recovery-points"
# The node's one copy in it, updated at each recovery point: what a restore brings back from a recovery point.
RECOVERY_POINT_ITEM = f"{RECOVERY_POINTS_ROOT}/{LATEST_COPY}"
# Where a node reads recovery-point requests and writes its answers, in the requests bucket.
def recovery_point_prefix(node: str) -> str:
    return f"nodes/{node}"


RECOVERY_POINT_PREFIX = recovery_point_prefix("primary")
# The backup job (a Lambda function, at most 15 minutes) waits this long at most for the node's answer; the node
# needs the drain of writes in flight (task.upstream_timeout_seconds), the copy (backup.max_write_pause_seconds),
# its own poll and the check of the copy (RECOVERY_POINT_MARGIN_SECONDS).
RECOVERY_POINT_JOB_TIMEOUT_SECONDS = 900
RECOVERY_POINT_MAX_WAIT_SECONDS = 840
RECOVERY_POINT_MARGIN_SECONDS = 120


def max_write_pause_limit(upstream_timeout_seconds: int) -> int:
    """The longest write pause the backup job can wait for."""
    return RECOVERY_POINT_MAX_WAIT_SECONDS - upstream_timeout_seconds - RECOVERY_POINT_MARGIN_SECONDS


def recovery_point_wait_seconds(upstream_timeout_seconds: int, max_write_pause_seconds: int) -> int:
    """How long the backup job waits for the node's answer."""
    return upstream_timeout_seconds + max_write_pause_seconds + RECOVERY_POINT_MARGIN_SECONDS

# Interface VPC endpoints the tasks and functions need (the S3 gateway endpoint is always there): images (ECR),
# logs, the token secret and the key that encrypts it.
INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "logs", "secretsmanager", "kms")

# Ports of the load balancer's listeners.
HTTP_PORT = 80
HTTPS_PORT = 443


def log_group_name(environment: str, purpose: str) -> str:
    """Every log group of an environment is named under /chroma/<env>/, so the data key's policy can let CloudWatch
    Logs use the key for exactly those log groups."""
    return f"/{SERVICE_NAME}/{environment}/{purpose}"


def ssm_parameter_prefix(environment: str) -> str:
    """Prefix of the SSM parameters that publish an environment's endpoint and identifiers."""
    return f"/{SERVICE_NAME}/{environment}"


# Names (under the prefix above) of what clients and operators need.
SSM_ENDPOINT_URL = "endpoint-url"
SSM_TOKEN_SECRET_ARN = "token-secret-arn"
SSM_CLUSTER_NAME = "cluster-name"
SSM_SERVICE_NAME = "service-name"
SSM_FILE_SYSTEM_ID = "file-system-id"
SSM_LOG_GROUP_NAME = "log-group-name"
# How long the gateway still accepts the previous token after a rotation: clients derive their refresh from it.
SSM_PREVIOUS_TOKEN_GRACE_SECONDS = "previous-token-grace-seconds"
SSM_TOKEN_ROTATION_DAYS = "token-rotation-days"
SSM_BACKUP_VAULT_NAME = "backup-vault-name"
SSM_BACKUP_ROLE_ARN = "backup-role-arn"
# The restore (chroma-ops restore, the restore automation): the one-off task that swaps a restored copy in.
SSM_RESTORE_TASK_FAMILY = "restore-task-family"
SSM_PRIVATE_SUBNETS = "private-subnets"
SSM_TASK_SECURITY_GROUP = "task-security-group"
SSM_RECOVERY_POINTS_BUCKET = "recovery-points-bucket"
RESTORE_CONTAINER = "restore"
# Where the restore task mounts the file system's root (an access point rooted at /, acting as root).
RESTORE_MOUNT_PATH = "/efs"
