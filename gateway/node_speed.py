"""How long the node's own work takes against its data size: the start check, and a recovery point's copy.

    python -m gateway.node_speed [--records 100000] [--dim 384] [--collections 2]

Writes the collections with a real `chroma run` on loopback (temporary directory), stops it, then runs the start
check (gateway.integrity) three times: with no remembered list (every element read), with the list a passing check
leaves (nothing read element by element), and after one more save of one collection (only that one read). Then
takes a recovery point (gateway.snapshot.take: the copy that writes wait for) and prints its pause per GiB; then
writes one more batch into one collection and takes the next one, which copies only the files that changed.
Local disk: on EFS both are bounded by the task's EFS throughput. (Development tool: not shipped in the image.)
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import chromadb
from chromadb.config import Settings

from gateway import integrity, snapshot
from gateway.local import LOOPBACK, chroma_server

BATCH = 2000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000, help="per collection")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--collections", type=int, default=2)
    args = parser.parse_args(argv)
    rng = random.Random(3)  # noqa: S311 - test vectors

    def batch(start: int, count: int) -> tuple[list[str], list[list[float]]]:
        return ([f"r{i}" for i in range(start, start + count)],
                [[rng.random() for _ in range(args.dim)] for _ in range(count)])

    with tempfile.TemporaryDirectory(prefix="check-speed-") as tmp:
        data = Path(tmp) / "data"
        with chroma_server(data, timeout=120) as server:
            api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=Settings(anonymized_telemetry=False))
            for number in range(args.collections):
                collection = api.create_collection(f"speed-{number}")
                for start in range(0, args.records, BATCH):
                    collection.add(*batch(start, min(BATCH, args.records - start)))
        print(f"{'start':<34} {'index MiB':>10} {'scanned':>8} {'seconds':>8} {'MiB/s':>7}")

        def measure(label: str) -> None:
            report = integrity.check(data)
            assert not report.quarantined, report.quarantined
            mib = report.disk.index_bytes / (1 << 20)
            scanned = sum(v.scanned for v in report.collections)
            print(f"{label:<34} {mib:>10.1f} {scanned:>8} {report.seconds:>8.2f} {mib / report.seconds:>7.0f}")
            (data / integrity.VERIFIED_FILE).write_text(json.dumps(report.verified()))

        measure("first start (every element read)")
        measure("restart, nothing written")
        with chroma_server(data, timeout=120) as server:
            api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=Settings(anonymized_telemetry=False))
            api.get_collection("speed-0").add(*batch(args.records, BATCH))
        measure("restart after writing 1 collection")

        class Idle:  # Chroma is stopped: nothing to hold, nothing in flight
            def hold(self) -> None: ...
            def release(self) -> None: ...
            def in_flight(self) -> int:
                return 0

        where = snapshot.SnapshotSettings(source=data, root=Path(tmp) / "recovery-points")

        def recovery_point(label: str, snapshot_id: str) -> None:
            point = snapshot.take(Idle(), where, snapshot_id, "1.5.9")
            copied, total = point.copied_bytes / (1 << 20), point.bytes / (1 << 20)
            print(f"{label:<34} {copied:>8.1f} of {total:.1f} MiB copied in {point.pause_seconds:.2f} s of held "
                  f"writes ({copied / point.pause_seconds:.0f} MiB/s, {point.seconds_per_gib:.1f} s per GiB)")

        print()
        recovery_point("recovery point, first copy", "speed-1")
        with chroma_server(data, timeout=120) as server:
            api = chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=Settings(anonymized_telemetry=False))
            api.get_collection("speed-0").add(*batch(2 * args.records, BATCH))
        recovery_point(f"next, after {BATCH} records in 1", "speed-2")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
