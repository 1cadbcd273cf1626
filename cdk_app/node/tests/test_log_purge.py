"""Bounded disk: Chroma purges its write-ahead log in every tenant and database, and the SQLite file stops growing
once the log is purged (freed pages are reused), so no vacuum is scheduled. Real `chroma run` on loopback; the node
metrics' own reader (gateway.integrity.disk_usage) measures it, as it does on the node.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import chromadb
import pytest
from chromadb.config import Settings

from gateway import integrity
from gateway.local import LOOPBACK, chroma_server

pytestmark = pytest.mark.servers

TENANTS = (("default_tenant", "default_database"), ("acme", "main"))
RECORDS = 3000
BATCH = 500


def _vectors(start: int, count: int, version: int) -> tuple[list[str], list[list[float]]]:
    return ([f"r{i}" for i in range(start, start + count)],
            [[float(i), float(version), float(i % 17), 0.5] for i in range(start, start + count)])


def test_the_log_stays_short_in_every_tenant_and_the_file_stops_growing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with chroma_server(data) as server:
        admin = chromadb.AdminClient(Settings(chroma_api_impl="chromadb.api.fastapi.FastAPI",
                                              chroma_server_host=LOOPBACK, chroma_server_http_port=server.port,
                                              anonymized_telemetry=False))
        collections = []
        for tenant, database in TENANTS:
            if tenant != "default_tenant":
                admin.create_tenant(tenant)
                admin.create_database(database, tenant=tenant)
            api = chromadb.HttpClient(host=LOOPBACK, port=server.port, tenant=tenant, database=database,
                                      settings=Settings(anonymized_telemetry=False))
            collections.append(api.create_collection("purge"))
        sizes = []
        for version in range(4):  # each round rewrites every record: without purging, the log would grow by 6000
            for collection in collections:
                for start in range(0, RECORDS, BATCH):
                    collection.upsert(*_vectors(start, BATCH, version))
            usage = integrity.disk_usage(data)
            assert usage.log_rows is not None and usage.log_rows <= 2 * len(TENANTS), usage
            sizes.append(usage.sqlite_bytes)
        assert all(c.count() == RECORDS for c in collections)
    # After the first rewrite the file reuses the pages the purge freed instead of growing with every write.
    print("SQLite bytes after each round:", sizes)
    assert sizes[3] <= sizes[1] * 1.1, sizes
    db = sqlite3.connect(f"{(data / integrity.SQLITE_FILE).as_uri()}?mode=ro", uri=True)
    try:
        (config,) = db.execute("SELECT config_json_str FROM embeddings_queue_config").fetchone()
    finally:
        db.close()
    assert '"automatically_purge":true' in config.replace(" ", "")
