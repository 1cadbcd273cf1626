"""How long the start check takes, against index size: a full scan, and a start where nothing changed.

    python -m gateway.check_speed [--records 100000] [--dim 384] [--collections 2]

Writes the collections with a real `chroma run` on loopback (temporary directory), stops it, then runs the start
check (gateway.integrity) three times: with no remembered list (every element read), with the list a passing check
leaves (nothing read element by element), and after one more save of one collection (only that one read).
Prints index bytes, seconds and MiB/s. (Development tool: not shipped in the gateway image.)
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import chromadb
from chromadb.config import Settings

from gateway import integrity
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
