"""chroma-ops: smoke-test, benchmark, size, price and restore a Chroma deployment.

Exit codes: 0 success, 1 the check failed or the endpoint refused us, 2 bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.settings import NODE_HEADER
from ops.errors import EXIT_FAILED, OpsError, UsageError
from ops.output import Progress, emit_json, table

TOKEN_ENV = "CHROMA_OPS_TOKEN"  # noqa: S105 - the name of a variable, not a token


def _environments() -> dict[str, Any]:
    from cdk_app.environments import ENVIRONMENTS

    return dict(ENVIRONMENTS)


def _config(name: str) -> Any:
    environments = _environments()
    if name not in environments:
        raise UsageError(f"unknown environment {name!r}; known: {', '.join(environments)}")
    return environments[name]


def _endpoint(args: argparse.Namespace) -> tuple[str, str, str]:
    """(url, token, where it came from) from --env, or from --endpoint and --token / $CHROMA_OPS_TOKEN."""
    if args.env and args.endpoint:
        raise UsageError("give either --env or --endpoint, not both")
    if args.env:
        import boto3

        from ops.discovery import discover

        config = _config(args.env)
        found = discover(args.env, boto3.Session(region_name=config.region), list(_environments()))
        return found.url, found.token, f"{args.env} ({found.source})"
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        raise UsageError(f"--endpoint needs a token: --token, or the {TOKEN_ENV} environment variable")
    return args.endpoint, token, "--endpoint"


def _add_target_options(parser: argparse.ArgumentParser, required: bool) -> None:
    group = parser.add_argument_group("target" + ("" if required else " (default: a local Chroma + gateway)"))
    group.add_argument("--env", help="environment whose endpoint and token to discover (SSM, then stack outputs)")
    group.add_argument("--endpoint", help="a Chroma endpoint behind the gateway, e.g. https://chroma.example.com")
    group.add_argument("--token", help=f"token for --endpoint (prefer ${TOKEN_ENV}: it stays out of shell history)")


def cmd_smoke(args: argparse.Namespace) -> int:
    from ops import smoke

    if not (args.env or args.endpoint):
        raise UsageError("smoke needs --env ENV or --endpoint URL")
    node, tenant = _node_and_tenant(args)
    url, token, source = _endpoint(args)
    steps = smoke.run(url, token, node=node, tenant=tenant)
    ok = all(s.ok for s in steps)
    if args.json:
        emit_json({"endpoint": url, "source": source, "ok": ok, "steps": [s.__dict__ for s in steps]})
    else:
        print(f"smoke test of {url} (from {source})\n")
        table(["step", "result", "ms", "detail"], [[s.name, "ok" if s.ok else "FAILED", s.ms, s.detail]
                                                   for s in steps])
        print(f"\n{'all steps passed' if ok else 'FAILED'}")
    return 0 if ok else EXIT_FAILED


def _node(config: Any, option: str, name: str, hint: str = "") -> Any:
    """The environment's node `name` (a NodeConfig), or a UsageError naming the option and the nodes there are."""
    names = [node.name for node in config.nodes]
    if name not in names:
        raise UsageError(f"{option} {name}: environment {config.name!r} has the nodes {', '.join(names)}{hint}")
    return config.node(name)


def _node_and_tenant(args: argparse.Namespace) -> tuple[str | None, str]:
    """--node: the node to address (X-Chroma-Node) and a tenant placed on it to work in; else the load balancer's
    choice (the primary) and default_tenant."""
    node = args.node
    if node is None:
        return None, "default_tenant"
    if not args.env:
        raise UsageError("--node needs --env (the environment's placement says which tenant the node serves)")
    placed = _node(_config(args.env), "--node", node).tenants
    if node == "primary":
        return node, "default_tenant"
    if not placed:
        raise UsageError(f"--node {node}: no tenant is placed on it yet, so it serves nothing to test")
    return node, placed[0]


def cmd_bench(args: argparse.Namespace) -> int:
    import contextlib

    from ops import bench
    from ops.loadgen import Target

    with contextlib.ExitStack() as stack:
        if args.env or args.endpoint:
            node, tenant = _node_and_tenant(args)
            url, token, source = _endpoint(args)
            headers = {"Authorization": f"Bearer {token}", **({NODE_HEADER: node} if node else {})}
            target = Target(source, url, headers, tenant)
        else:
            bench.validate(args.vectors, args.dim, args.k, args.concurrency, args.batch_sizes, args.seconds)
            target = stack.enter_context(bench.local_target())
        result = bench.run(target, args.vectors, args.dim, args.k, args.concurrency, args.batch_sizes,
                           args.seconds, args.seed)
    if args.json:
        emit_json(result)
        return 0
    d, m = result["dataset"], result["machine"]
    print(f"target: {result['target']} ({result['endpoint']})")
    print(f"dataset: {d['vectors']:,} x {d['dim']}-d {d['space']} vectors, seed {d['seed']}; k = {args.k}; "
          f"{args.seconds:g} s per level; client machine: {m['arch']}, {m['cpus']} CPUs, Python {m['python']}\n")
    table(["batch size", "vectors", "seconds", "vectors/s"],
          [[i["batch_size"], i["vectors"], i["seconds"], i["vectors_per_second"]] for i in result["insert"]])
    print()
    table(["concurrency", "queries", "errors", "mean ms", "stdev", "p50", "p95", "p99", "queries/s"],
          [[q["concurrency"], q["requests"], q["errors"], q["mean_ms"], q["stdev_ms"], q["p50_ms"], q["p95_ms"],
            q["p99_ms"], q["per_second"]] for q in result["query"]])
    return 0


def cmd_capacity(args: argparse.Namespace) -> int:
    from ops import capacity, cost

    if args.calibrate:
        return _calibrate(args)
    if args.tenant:
        return _place(args)
    if args.vectors is None or args.dim is None:
        raise UsageError("capacity needs --vectors and --dim (or --calibrate)")
    result = capacity.estimate(args.vectors, args.dim, args.max_neighbors, args.document_bytes,
                               args.metadata_bytes, args.headroom)
    prices = cost.load_prices()
    architecture = _config(args.env).task.architecture.value if args.env else "ARM64"
    size = capacity.recommend(result.required_task_mib,
                              lambda cpu, memory: cost.fargate_monthly(prices, architecture, cpu, memory))
    report: dict[str, Any] = {"estimate": result.as_dict(),
                              "recommended_task": None if size is None else {
                                  "cpu": size[0], "memory_mib": size[1], "architecture": architecture,
                                  "monthly_usd": round(cost.fargate_monthly(prices, architecture, *size), 2)}}
    fits = None
    if args.env:
        config = _config(args.env)
        task = config.node_task(_node(config, "--node", args.node))
        fits = task.memory_mib >= result.required_task_mib
        report["environment"] = {"name": args.env, "node": args.node, "cpu": task.cpu,
                                 "memory_mib": task.memory_mib, "fits": fits,
                                 "chroma_guide_max_vectors": capacity.chroma_guide_max_vectors(task.memory_mib,
                                                                                               args.dim),
                                 # Collections of exactly this size the task holds in memory at once.
                                 "collections_held": capacity.collections_per_task(
                                     task.memory_mib, args.vectors, args.dim, args.max_neighbors, args.headroom)}
    if args.json:
        emit_json(report)
    else:
        gib = capacity.GIB
        print(f"{args.vectors:,} vectors x {args.dim} dimensions, max_neighbors {args.max_neighbors}\n")
        rows: list[list[Any]] = [
            ["index in memory (RAM)", f"{result.ram_bytes / gib:,.2f} GiB"],
            ["on disk (EFS)", f"{result.disk_bytes / gib:,.2f} GiB"],
            ["task memory needed", f"{result.required_task_mib:,} MiB (RAM x {1 + args.headroom:g} + 1 GiB OS "
                                   f"+ {capacity.GATEWAY_MIB} MiB gateway)"],
            ["recommended Fargate size", "none: no Fargate task is large enough; split the data across nodes"
             if size is None else f"{size[0] / 1024:g} vCPU / {size[1] / 1024:g} GB {architecture}, "
                                  f"${report['recommended_task']['monthly_usd']:,.2f}/month"],
        ]
        if args.env:
            env = report["environment"]
            rows.append([f"environment {args.env}, node {args.node}",
                         f"{env['cpu'] / 1024:g} vCPU / {env['memory_mib'] / 1024:g} GB: "
                         + ("holds it" if fits else "DOES NOT hold it")])
            rows.append(["Chroma's rule of thumb", f"~{env['chroma_guide_max_vectors']:,} vectors of {args.dim} "
                         f"dimensions fit in {env['memory_mib'] / 1024:g} GB"])
            rows.append(["collections of this size in memory at once", f"{env['collections_held']:,} (with "
                         "task.collection_size set to this size, Chroma's index cache keeps that many loaded)"])
        table(["", "estimate"], rows)
    if size is None:
        return EXIT_FAILED
    return EXIT_FAILED if fits is False else 0


def _place(args: argparse.Namespace) -> int:
    from ops import placement

    memory = args.node_memory_mib or (_config(args.env).task.memory_mib if args.env else 16384)
    placement.smallest_cpu(memory)
    loads = [placement.parse(text) for text in args.tenant]
    nodes = placement.place(loads, memory, args.headroom)
    if args.json:
        emit_json({"node_memory_mib": memory, "nodes": [
            {"name": n.name, "tenants": [t.__dict__ for t in n.tenants],
             "memory_used_percent": round(placement.fill_percent(n, memory, args.headroom), 1)} for n in nodes]})
        return 0
    print(f"{len(loads)} tenants on {len(nodes)} node(s) of {memory / 1024:g} GB (largest first, each on the first "
          "node with room)\n")
    table(["node", "tenants", "vectors", "memory used %"],
          [[n.name, ", ".join(t.name for t in n.tenants), sum(t.vectors for t in n.tenants),
            placement.fill_percent(n, memory, args.headroom)] for n in nodes])
    print(f"\nin cdk_app/environments.py:\n{placement.config_snippet(nodes, memory)}")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ops import capacity
    from ops.output import Progress

    rows = []
    for vectors in args.sizes:
        progress = Progress(vectors, f"{vectors:,} x {args.calibration_dim}")
        m = capacity.measure(vectors, args.calibration_dim, progress=progress.advance)
        progress.close()
        rows.append(m)
    if args.json:
        emit_json([m.__dict__ for m in rows])
        return 0
    mib = capacity.MIB
    table(["vectors", "dim", "measured RSS MiB", "predicted MiB", "measured disk MiB", "predicted disk MiB"],
          [[m.vectors, m.dim, m.rss_bytes / mib, m.predicted_ram_bytes / mib, m.disk_bytes / mib,
            m.predicted_disk_bytes / mib] for m in rows])
    return 0


def cmd_cost(args: argparse.Namespace) -> int:
    from ops import cost

    usage = cost.Usage(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cost.Usage)})
    if (args.vectors is None) != (args.dim is None):
        raise UsageError("the what-if needs both --vectors and --dim")
    sized = None
    if args.vectors is not None:
        sized = cost.what_if(_config(args.env), args.vectors, args.dim, usage)
        report = sized.report
    else:
        report = cost.estimate(_config(args.env), usage)
    if args.json:
        emit_json({**report.as_dict(), **({"what_if": {"vectors": sized.vectors, "dim": sized.dim,
                                                         "nodes": sized.nodes, "cpu": sized.cpu,
                                                         "memory_mib": sized.memory_mib, "data_gib": sized.data_gib}}
                                          if sized else {})})
        return 0
    print(f"monthly estimate for {args.env} (us-east-1, prices as of {report.prices_as_of})")
    if sized:
        task = f"{sized.cpu / 1024:g} vCPU / {sized.memory_mib / 1024:g} GB"
        where = (f"the cheapest task that holds them is {task}" if sized.nodes == 1 else
                 f"no single task holds them: {sized.nodes} nodes, each the cheapest task that holds its share, "
                 f"{task}")
        print(f"what-if: {sized.vectors:,} vectors x {sized.dim} dimensions on {args.env}'s layout: {where}; EFS "
              f"holds {sized.data_gib:,.1f} GB (each node's directory and its quiesced copy)")
    print()
    table(["component", "detail", "$/month"], [[line.component, line.detail, line.monthly_usd]
                                              for line in report.lines] + [["total", "", report.total]])
    print(f"\ncase study design (2 x 4 vCPU / 8 GB x86, EFS Max I/O, NAT): ${cost.CASE_STUDY_TOTAL:,.2f}/month; "
          f"this environment: ${report.total:,.2f} ({report.total - cost.CASE_STUDY_TOTAL:+,.2f})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    import boto3

    from ops import restore
    from ops.recovery_points import choose
    from ops.restore_aws import AwsNode

    config = _config(args.env)
    if sum(bool(x) for x in (args.list, args.undo, args.discard, args.recovery_point)) != 1:
        raise UsageError("restore needs exactly one of --recovery-point ARN|latest, --list, --undo RESTORE_ID, "
                         "--discard RESTORE_ID")
    _node(config, "--node", args.node)
    node = AwsNode(boto3.Session(region_name=config.region), args.env, node=args.node)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.list:
        points = node.recovery_points()
        if args.json:
            emit_json([p.as_dict() for p in points])
        else:
            table(["created", "snapshot id (quiesced copy)", "Chroma", "records", "recovery point"],
                  [[p.created_at.isoformat(timespec="seconds"), p.snapshot_id or "none: not restorable here",
                    p.chroma_version or "", p.records if p.records is not None else "", p.arn] for p in points])
        return 0
    if args.discard:
        if not args.yes:
            raise UsageError(f"--discard {args.discard} deletes the directories that restore kept aside (the one from "
                             "before it, and a copy that failed verification): add --yes to go ahead")
        report = restore.discard(node, args.discard, say)
    elif args.undo:
        if not args.yes:
            raise UsageError(f"--undo {args.undo} stops the node, puts the directory from before that restore back "
                             "and starts the node: add --yes to go ahead")
        report = restore.undo(node, args.env, args.undo, say)
    else:
        if not args.yes:
            point = choose(node.recovery_points(), args.recovery_point, config.chroma_image.tag, args.force_version)
            print(f"would restore {point.arn}\n  snapshot {point.snapshot_id}, {point.records} records in "
                  f"{point.collections} collections, Chroma {point.chroma_version}, taken {point.created_at}\n"
                  f"into {args.env}: the node is stopped for the restore (an outage), its directory kept aside.\n"
                  "Add --yes to go ahead.")
            return 0
        try:
            report = restore.restore(node, args.env, args.recovery_point, config.chroma_image.tag,
                                     args.force_version, datetime.now(UTC), say)
        except restore.RestoreFailed as failed:
            _print_restore(failed.report, args.json)
            raise
    _print_restore(report, args.json)
    return 0


def _print_restore(report: Any, as_json: bool) -> None:
    if as_json:
        emit_json(dataclasses.asdict(report))
        return
    print(f"restore {report.restore_id}: {'OK' if report.ok else 'NOT COMPLETED'}")
    if report.recovery_point:
        print(f"recovery point {report.recovery_point['arn']} (snapshot {report.recovery_point['snapshot_id']})")
    table(["step", "seconds", "detail"], [[s.name, s.seconds, s.detail] for s in report.steps])
    if report.verdict:
        print(f"verified by the node: {report.verdict.get('status')}, {report.verdict.get('collections')} "
              f"collections, {report.verdict.get('records')} records, problems: {report.verdict.get('problems')}")


def cmd_move_tenant(args: argparse.Namespace) -> int:
    import time

    import boto3

    from cdk_app.config import PRIMARY_NODE
    from cdk_app.constants import SSM_RECOVERY_POINTS_BUCKET, ssm_parameter_prefix
    from chroma_on_aws_client.tokens import StaticToken
    from ops import move_tenant

    config = _config(args.env)
    _node(config, "--to", args.to, " (add the node to its config and deploy it first)")
    state_path = Path(args.state or f"chroma-move-{args.env}-{args.tenant}.json")
    if state_path.exists():
        state = move_tenant.MoveState.load(state_path)
        if (state.environment, state.tenant, state.destination) != (args.env, args.tenant, args.to):
            raise UsageError(f"{state_path} is the state of moving {state.tenant!r} to {state.destination!r} in "
                             f"{state.environment!r}: finish it, or give another --state")
    else:
        source = config.tenant_placement.get(args.tenant, PRIMARY_NODE)
        state = move_tenant.new_state(args.env, args.tenant, source, args.to, time.time())
    session = boto3.Session(region_name=config.region)
    if args.endpoint:
        token = args.token or os.environ.get(TOKEN_ENV)
        if not (token and args.bucket):
            raise UsageError(f"--endpoint needs --bucket and a token (--token or ${TOKEN_ENV})")
        url, bucket = args.endpoint, args.bucket
    else:
        url, token, _ = _endpoint(args)
        bucket = args.bucket or session.client("ssm").get_parameter(
            Name=f"{ssm_parameter_prefix(args.env)}/{SSM_RECOVERY_POINTS_BUCKET}")["Parameter"]["Value"]
    target = move_tenant.Target(url.rstrip("/"), StaticToken(token), session.client("s3"), bucket)
    bars: dict[str, Progress] = {}

    def progress(label: str, done: int, total: int) -> None:
        bar = bars.setdefault(label, Progress(total, label))
        bar.advance(done - bar.done)

    mover = move_tenant.Mover(target, state, state_path, print, progress, args.answer_timeout, args.route_timeout)
    if args.delete_source_copy:
        if not args.yes:
            raise UsageError(f"--delete-source-copy deletes {args.tenant!r}'s databases on {state.source} (once "
                             f"{state.destination} holds every record): add --yes to go ahead")
        move_tenant.delete_source_copy(mover)
        return 0
    if args.dry_run:
        plan = mover.plan()
        rows = [[c.key, c.records, c.records * c.bytes_per_record // 1024] for c in plan.collections]
        print(f"move {args.tenant!r} from {state.source} to {state.destination} in {args.env}")
        table(["collection", "records", "KiB"], rows)
        print(f"{plan.records:,} records, ~{plan.bytes / (1 << 20):,.1f} MiB; writes to {args.tenant!r} held for "
              f"~{plan.pause_seconds():,.0f} s plus the deploy that switches its placement (planned maintenance: "
              "clients get 503 WritesPaused, reads go on)")
        return 0
    state.save(state_path)
    final = mover.run()
    for bar in bars.values():
        bar.close()
    if args.json:
        emit_json(dataclasses.asdict(final))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chroma-ops", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    smoke = commands.add_parser("smoke", help="heartbeat, create, add, query, get, delete; cleans up")
    _add_target_options(smoke, required=True)

    smoke.set_defaults(run=cmd_smoke)

    bench = commands.add_parser("bench", help="query latency/throughput and insert throughput")
    _add_target_options(bench, required=False)
    bench.add_argument("--vectors", type=int, default=20_000)
    bench.add_argument("--dim", type=int, default=384)
    bench.add_argument("--k", type=int, default=10)
    bench.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    bench.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 500, 1000])
    bench.add_argument("--seconds", type=float, default=5.0, help="measurement time per concurrency level")
    bench.add_argument("--seed", type=int, default=7)
    bench.set_defaults(run=cmd_bench)

    capacity = commands.add_parser("capacity", help="RAM and disk for N vectors; the Fargate size that holds them")
    capacity.add_argument("--vectors", type=int)
    capacity.add_argument("--dim", type=int)
    capacity.add_argument("--max-neighbors", type=int, default=16, help="HNSW max_neighbors (M), default 16")
    capacity.add_argument("--document-bytes", type=int, default=0, help="average document size stored per record")
    capacity.add_argument("--metadata-bytes", type=int, default=0, help="average metadata size per record")
    capacity.add_argument("--headroom", type=float, default=0.25, help="spare memory fraction (default 0.25)")
    capacity.add_argument("--env", help="also say whether this environment's task holds it")
    capacity.add_argument("--node", default="primary", help="with --env: the node whose task (default: primary)")
    capacity.add_argument("--tenant", action="append", metavar="NAME=VECTORS:DIM[:METADATA_BYTES]",
                          help="place these tenants on nodes (repeat it): the fewest nodes of --node-memory-mib")
    capacity.add_argument("--node-memory-mib", type=int,
                          help="each node's task memory for --tenant (default: --env's task, else 16384)")
    capacity.add_argument("--calibrate", action="store_true", help="measure a local Chroma at --sizes instead")
    capacity.add_argument("--sizes", type=int, nargs="+", default=[5_000, 20_000, 50_000])
    capacity.add_argument("--calibration-dim", type=int, default=384)
    capacity.set_defaults(run=cmd_capacity)

    cost = commands.add_parser("cost", help="itemized monthly cost of an environment (or of a workload on it)")
    cost.add_argument("--env", required=True)
    cost.add_argument("--vectors", type=int, help="what-if: price this many vectors on the environment's layout")
    cost.add_argument("--dim", type=int, help="what-if: their dimensions")
    from ops.cost import Usage  # plain data: no CDK

    for usage_field in dataclasses.fields(Usage):  # one option per usage figure, defaults stated once (on Usage)
        cost.add_argument(f"--{usage_field.name.replace('_', '-')}", type=float, default=usage_field.default,
                          help=usage_field.metadata["help"])
    cost.set_defaults(run=cmd_cost)

    restore = commands.add_parser("restore", help="restore a recovery point into the node (stops it meanwhile)")
    restore.add_argument("--env", required=True)
    restore.add_argument("--recovery-point", help="a recovery point ARN, or 'latest' (the newest quiesced one)")
    restore.add_argument("--list", action="store_true", help="list the recovery points and exit")
    restore.add_argument("--undo", metavar="RESTORE_ID", help="put back the directory a restore kept aside")
    restore.add_argument("--discard", metavar="RESTORE_ID", help="delete the directories a restore kept aside")
    restore.add_argument("--node", default="primary",
                         help="the node to restore (default: primary); the others are untouched")
    restore.add_argument("--force-version", action="store_true",
                         help="restore a recovery point taken with another Chroma release")
    restore.add_argument("--yes", action="store_true", help="go ahead (without it: say what would happen)")
    restore.set_defaults(run=cmd_restore)

    move = commands.add_parser("move-tenant", help="move a tenant to another node: hold its writes, copy, verify, "
                                                   "switch its placement, release (resumable)")
    _add_target_options(move, required=True)
    move.add_argument("--tenant", required=True)
    move.add_argument("--to", required=True, metavar="NODE", help="the destination node")
    move.add_argument("--dry-run", action="store_true", help="size the move and estimate its write pause")
    move.add_argument("--state", help="the state file (default: ./chroma-move-<env>-<tenant>.json); a rerun "
                                      "with it goes on where the move stopped")
    move.add_argument("--delete-source-copy", action="store_true",
                      help="after a finished move: delete the tenant's databases on the source node")
    move.add_argument("--yes", action="store_true", help="go ahead with --delete-source-copy")
    move.add_argument("--bucket", help="the requests bucket (default: SSM /chroma/<env>/recovery-points-bucket)")
    move.add_argument("--answer-timeout", type=float, default=300.0, help="seconds to wait for a node's answer")
    move.add_argument("--route-timeout", type=float, default=3600.0,
                      help="seconds to wait for the deploy that switches the placement")
    move.set_defaults(run=cmd_move_tenant)

    for sub in (smoke, bench):
        sub.add_argument("--node", help="this node of a multi-node environment, in a tenant placed on it (default: "
                                        "what the load balancer routes there: the primary, default_tenant)")
    for sub in (smoke, bench, capacity, cost, restore, move):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except OpsError as error:
        print(f"chroma-ops {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
