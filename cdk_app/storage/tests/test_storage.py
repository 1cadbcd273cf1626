"""The Storage stack: encrypted EFS, its access point, retention of data, backups."""

from __future__ import annotations

import pytest

from cdk_app.environments import ENVIRONMENTS
from tests.cdk_support import SynthesizedApp, resources

ENVS = list(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVS)
def test_file_system_encrypted_general_purpose_elastic(synthesized: SynthesizedApp, env: str) -> None:
    storage = synthesized.template_json(env, "Storage")
    fs = storage["Resources"]["ChromaFileSystem"]
    assert fs["Properties"]["Encrypted"] is True
    assert fs["Properties"]["KmsKeyId"] == {"Fn::GetAtt": ["ChromaDataKey", "Arn"]}
    assert fs["Properties"]["PerformanceMode"] == "generalPurpose"
    assert fs["Properties"]["ThroughputMode"] == "elastic"
    assert storage["Resources"]["ChromaDataKey"]["Properties"]["EnableKeyRotation"] is True
    expected = "Retain" if ENVIRONMENTS[env].retain_data else "Delete"
    for logical_id in ("ChromaFileSystem", "ChromaDataKey", "ChromaBackupVault", "ChromaGatewayTokenSecret"):
        assert storage["Resources"][logical_id]["DeletionPolicy"] == expected, logical_id


def test_staging_and_prod_retain_their_data_and_prod_is_termination_protected(synthesized: SynthesizedApp) -> None:
    for env in ("staging", "prod"):
        assert synthesized.template_json(env, "Storage")["Resources"]["ChromaFileSystem"]["DeletionPolicy"] == "Retain"
    assert synthesized.stack("prod", "Storage").termination_protection is True


def test_access_point_forces_owner_and_own_directory(synthesized: SynthesizedApp) -> None:
    ap = synthesized.template_json("prod", "Storage")["Resources"]["ChromaPrimaryNodeAccessPoint"]["Properties"]
    assert ap["PosixUser"] == {"Uid": "1000", "Gid": "1000"}
    assert ap["RootDirectory"]["Path"] == "/chroma/primary"
    assert ap["RootDirectory"]["CreationInfo"]["Permissions"] == "750"


@pytest.mark.parametrize("env", ENVS)
def test_no_backup_plan_copies_the_file_system_while_chroma_writes(synthesized: SynthesizedApp, env: str) -> None:
    """The backup job (lambdas/recovery_point) is the only schedule: a plan would back up unquiesced."""
    storage = synthesized.template_json(env, "Storage")
    assert resources(storage, "AWS::Backup::BackupPlan") == {}
    assert resources(storage, "AWS::Backup::BackupSelection") == {}
    assert storage["Resources"]["ChromaBackupVault"]["Properties"]["EncryptionKeyArn"] == {
        "Fn::GetAtt": ["ChromaDataKey", "Arn"]}
