"""kill -9 during writes, many times, against a real `chroma run`: does the start check catch every broken collection?

    python -m gateway.crash_trials [--trials 30] [--records 10000] [--dim 64] [--seed 1] [--min-torn 3]

Each trial copies a prepared directory (two collections of `--records` records, saved with a small
`sync_threshold` so that nearly every write also saves the index, which is when a kill tears it), starts Chroma
on it, writes continuously (adds, upserts and deletes, alternating collections) and kills Chroma with SIGKILL at a
random moment. Then, in this order:

1. the start check (gateway.integrity) reads the directory, as the node does before Chroma starts;
2. Chroma is started again and every collection is read back in full against the client's ledger (every acknowledged
   write; a write in flight at the kill may have landed or not) and queried with its own vectors.

A collection whose read-back fails is broken. The run fails if any broken collection was not quarantined by the
check (undetected), if a collection the check passed lost or changed an acknowledged record, or if fewer than
`--min-torn` trials produced a broken collection (too few to prove anything; it goes on past `--trials`, up to
`--max-trials`, to reach them). Checked collections that read back
correctly are counted as false alarms (each would be an unneeded restore). Loopback only; every server is stopped.
(Development tool: not shipped in the gateway image.)
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.models.Collection import Collection
from chromadb.config import Settings

from gateway import integrity
from gateway.local import LOOPBACK, Server, chroma_server

COLLECTIONS = ("crash-a", "crash-b")
# Small batches and a save every batch: the kill lands inside a save often enough to measure (Chroma's default,
# 1000, saves less often and tears as rarely as 3 kills in 42 did).
HNSW = {"space": "l2", "sync_threshold": 100, "batch_size": 100}
ADD_BATCH, UPSERT_BATCH, DELETE_BATCH = 100, 50, 25
READ_BATCH = 5000
QUERY_SAMPLE = 40
ABSENT = -1  # a ledger state: the record does not exist


def vector(record_id: str, version: int, dim: int) -> list[float]:
    rng = random.Random(f"{record_id}:{version}")  # noqa: S311 - reproducible test vectors
    return [rng.random() for _ in range(dim)]


@dataclass
class Ledger:
    """What the client knows: for each record id, the versions it may have now (ABSENT: deleted or never added).
    An acknowledged write leaves one possibility; a write cut off by the kill leaves two."""

    states: dict[str, set[int]] = field(default_factory=dict)

    def write(self, collection: Collection, dim: int, rng: random.Random, counter: list[int]) -> None:
        live = [record_id for record_id, versions in self.states.items() if ABSENT not in versions]
        choice = rng.random()
        if choice < 0.6 or len(live) < UPSERT_BATCH:
            ids = [f"n{counter[0] + i}" for i in range(ADD_BATCH)]
            counter[0] += ADD_BATCH
            new = {record_id: 0 for record_id in ids}
            self._apply(new, lambda: collection.add(ids=ids, embeddings=[vector(i, 0, dim) for i in ids]))
        elif choice < 0.85:
            ids = rng.sample(live, UPSERT_BATCH)
            new = {record_id: max(self.states[record_id]) + 1 for record_id in ids}
            self._apply(new, lambda: collection.upsert(ids=ids, embeddings=[vector(i, new[i], dim) for i in ids]))
        else:
            ids = rng.sample(live, DELETE_BATCH)
            self._apply({record_id: ABSENT for record_id in ids}, lambda: collection.delete(ids=ids))

    def _apply(self, new: dict[str, int], call: Callable[[], object]) -> None:
        for record_id, version in new.items():
            self.states.setdefault(record_id, {ABSENT}).add(version)  # in flight: old or new
        call()  # raises once Chroma is killed: the in-flight write stays uncertain
        for record_id, version in new.items():
            self.states[record_id] = {version}


def client(server: Server) -> ClientAPI:
    return chromadb.HttpClient(host=LOOPBACK, port=server.port, settings=Settings(anonymized_telemetry=False))


def read_back(collection: Collection, ledger: Ledger, dim: int) -> str | None:
    """None if every record is in a state the ledger allows and queries find each record itself; else why not."""
    ids = sorted(ledger.states)
    found: dict[str, list[float]] = {}
    for start in range(0, len(ids), READ_BATCH):
        got = collection.get(ids=ids[start:start + READ_BATCH], include=["embeddings"])
        assert got["embeddings"] is not None
        found.update(zip(got["ids"], (list(map(float, e)) for e in got["embeddings"]), strict=True))
    for record_id in ids:
        allowed = ledger.states[record_id]
        if record_id not in found:
            if ABSENT not in allowed:
                return f"acknowledged record {record_id} is missing"
        elif not any(v != ABSENT and _close(found[record_id], vector(record_id, v, dim)) for v in allowed):
            return f"record {record_id} reads back a vector no acknowledged write gave it"
    if collection.count() != len(found):
        return f"count() says {collection.count()}, get() finds {len(found)}"
    sample = random.Random(len(found)).sample(sorted(found), min(QUERY_SAMPLE, len(found)))  # noqa: S311
    answer = collection.query(query_embeddings=[found[i] for i in sample], n_results=3)
    for record_id, ids_found, distances in zip(sample, answer["ids"], answer["distances"] or [], strict=True):
        # HNSW is approximate: a record may miss its own query. But every answer must be a real record at the
        # distance its stored vector really has; a torn index answers with ids whose vectors are elsewhere.
        for other, distance in zip(ids_found, distances, strict=True):
            if other not in found:
                return f"a query answers {other}, which get() does not find"
            true = sum((x - y) ** 2 for x, y in zip(found[record_id], found[other], strict=True))
            if abs(distance - true) > 1e-3 * max(1.0, true):
                return f"a query answers {other} at distance {distance:.4f}; its stored vector is at {true:.4f}"
    return None


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= 1e-6 for x, y in zip(a, b, strict=True))


@dataclass
class Outcome:
    trials: int = 0
    torn_trials: int = 0  # trials after which at least one collection read back broken
    broken: int = 0  # collections whose read-back failed after a kill
    detected: int = 0  # ... of which the start check quarantined
    false_alarms: int = 0  # quarantined, yet read back correctly (each would be an unneeded restore)
    failures: list[str] = field(default_factory=list)
    check_seconds: list[float] = field(default_factory=list)

    def summary(self) -> str:
        return (f"trials {self.trials}, trials that broke a collection {self.torn_trials}, broken collections "
                f"{self.broken}, detected {self.detected}, undetected {len(self.failures)}, false alarms "
                f"{self.false_alarms}, slowest check {max(self.check_seconds, default=0.0):.3f} s")


@contextlib.contextmanager
def prepared(work: Path, records: int, dim: int) -> Iterator[tuple[Path, dict[str, Ledger]]]:
    """A directory with the collections filled and cleanly stopped, and each one's ledger."""
    template = work / "template"
    ledgers = {}
    with chroma_server(template) as server:
        api = client(server)
        for name in COLLECTIONS:
            collection = api.create_collection(name, configuration={"hnsw": HNSW})
            ledger = Ledger()
            for start in range(0, records, 1000):
                ids = [f"base{i}" for i in range(start, min(start + 1000, records))]
                collection.add(ids=ids, embeddings=[vector(i, 0, dim) for i in ids])
                ledger.states.update({i: {0} for i in ids})
            ledgers[name] = ledger
    yield template, ledgers


def kill_during_writes(data: Path, ledgers: dict[str, Ledger], dim: int, rng: random.Random) -> None:
    """Start Chroma on `data`, write to every collection in turn, SIGKILL Chroma at a random moment."""
    with chroma_server(data) as server:
        api = client(server)
        collections = [(ledgers[name], api.get_collection(name)) for name in COLLECTIONS]
        counter = [0]

        def writer() -> None:
            with contextlib.suppress(Exception):  # the kill ends the loop with a connection error
                while True:
                    for ledger, collection in collections:
                        ledger.write(collection, dim, rng, counter)

        thread = threading.Thread(target=writer, daemon=True)
        thread.start()
        time.sleep(rng.uniform(0.5, 3.0))
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        thread.join(30)


def trial(number: int, template: Path, base: dict[str, Ledger], dim: int, rng: random.Random, outcome: Outcome,
          log: Callable[[str], None], keep: Path | None = None) -> None:
    data = template.parent / f"trial-{number}"
    shutil.copytree(template, data)
    ledgers = {name: Ledger({k: set(v) for k, v in ledger.states.items()}) for name, ledger in base.items()}
    kill_during_writes(data, ledgers, dim, rng)
    report = integrity.check(data)  # what the node does next, before Chroma starts
    outcome.check_seconds.append(report.seconds)
    quarantined = {v.name: v.problem for v in report.collections if v.problem}
    broken_here = 0
    with chroma_server(data) as server:
        api = client(server)
        for name in COLLECTIONS:
            try:
                problem = read_back(api.get_collection(name), ledgers[name], dim)
            except Exception as error:  # a broken collection fails in many ways; each one is an answer
                problem = f"{type(error).__name__}: {str(error)[:200]}"
            if server.process.poll() is not None:
                problem = problem or f"Chroma exited ({server.process.returncode}) while reading it back"
            verdict = f"QUARANTINED ({quarantined[name]})" if name in quarantined else "passed"
            log(f"trial {number:3d} {name}: check {verdict}; read-back {'BROKEN: ' + problem if problem else 'ok'}")
            if problem:
                broken_here += 1
                outcome.broken += 1
                if name in quarantined:
                    outcome.detected += 1
                else:
                    outcome.failures.append(f"trial {number}: {name} broken and NOT detected: {problem}")
            elif name in quarantined:
                outcome.false_alarms += 1
            if server.process.poll() is not None:
                break
    outcome.torn_trials += bool(broken_here)
    outcome.trials += 1
    if broken_here and keep is not None:
        shutil.copytree(data, keep / data.name)
    shutil.rmtree(data)


def run(trials: int, records: int, dim: int, seed: int, log: Callable[[str], None] = print,
        keep: Path | None = None, min_torn: int = 0, max_trials: int = 0) -> Outcome:
    """`trials` kills, then more (up to `max_trials` in all) until `min_torn` of them broke a collection."""
    rng = random.Random(seed)  # noqa: S311 - reproducible kill times
    outcome = Outcome()
    with tempfile.TemporaryDirectory(prefix="crash-trials-") as tmp, \
            prepared(Path(tmp), records, dim) as (template, ledgers):
        number = 0
        while number < trials or (outcome.torn_trials < min_torn and number < max_trials):
            number += 1
            trial(number, template, ledgers, dim, rng, outcome, log, keep)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--min-torn", type=int, default=3)
    parser.add_argument("--max-trials", type=int, default=60, help="go on past --trials until --min-torn")
    parser.add_argument("--keep", type=Path, help="copy the directory of every trial that broke a collection here")
    args = parser.parse_args(argv)
    started = time.monotonic()
    outcome = run(args.trials, args.records, args.dim, args.seed, keep=args.keep, min_torn=args.min_torn,
                  max_trials=args.max_trials)
    print(f"\n{outcome.summary()}, wall {time.monotonic() - started:.0f} s")
    for failure in outcome.failures:
        print("FAIL", failure)
    if outcome.torn_trials < args.min_torn:
        print(f"FAIL only {outcome.torn_trials} trials broke a collection (< {args.min_torn}): proves nothing")
    return 1 if outcome.failures or outcome.torn_trials < args.min_torn else 0


if __name__ == "__main__":
    raise SystemExit(main())
