"""Measure Chroma's write-ahead log (`embeddings_queue` in SQLite) under writes, per tenant and database.

    python -m ops.chroma_log [--records 10000] [--dim 32]

Starts a fresh `chroma run` (loopback, temporary directory), then in the default tenant/database and in a second
tenant/database adds `--records` records in batches of 500, upserts a fifth of them and deletes a tenth, and prints
the collection's count and the rows left in `embeddings_queue` after each (read by gateway.integrity.disk_usage,
as the node's metrics are). If the log were not purged, the rows would grow with every operation.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

import chromadb
from chromadb.config import Settings

from gateway import integrity
from gateway.local import LOOPBACK, chroma_server

BATCH = 500
TENANTS = (("default_tenant", "default_database"), ("acme", "main"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=32)
    args = parser.parse_args(argv)
    rng = random.Random(7)  # noqa: S311 - seeded test vectors, not a secret

    def vectors(count: int) -> list[list[float]]:
        return [[rng.random() for _ in range(args.dim)] for _ in range(count)]

    with tempfile.TemporaryDirectory(prefix="chroma-log-") as tmp, chroma_server(Path(tmp) / "data") as chroma:
        data = Path(tmp) / "data"
        settings = Settings(anonymized_telemetry=False)
        admin = chromadb.AdminClient(Settings(chroma_api_impl="chromadb.api.fastapi.FastAPI",
                                              chroma_server_host=LOOPBACK, chroma_server_http_port=chroma.port,
                                              anonymized_telemetry=False))
        print(f"{'tenant/database':<32} {'operations':>10} {'count':>7} {'log rows':>9}")
        for tenant, database in TENANTS:
            if tenant != "default_tenant":
                admin.create_tenant(tenant)
                admin.create_database(database, tenant=tenant)
            api = chromadb.HttpClient(host=LOOPBACK, port=chroma.port, tenant=tenant, database=database,
                                      settings=settings)
            collection = api.create_collection("log-measurement")
            for start in range(0, args.records, BATCH):
                collection.add(ids=[str(i) for i in range(start, start + BATCH)], embeddings=vectors(BATCH))
            upserted, deleted = args.records // 5, args.records // 10
            collection.upsert(ids=[str(i) for i in range(upserted)], embeddings=vectors(upserted))
            collection.delete(ids=[str(i) for i in range(deleted)])
            print(f"{tenant + '/' + database:<32} {args.records + upserted + deleted:>10} "
                  f"{collection.count():>7} {integrity.disk_usage(data).log_rows!s:>9}")
        print(f"\nSQLite file: {integrity.disk_usage(data).sqlite_bytes / (1 << 20):.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
