"""A stand-in for the load balancer in local tests of several nodes: it applies the listener rules of a synthesized
Compute template (path patterns as the ALB matches them: case-sensitive, `*` and `?` wildcards, the path without
its query, never %XX-decoded; header conditions case-insensitive), in priority order, else the default action.

Like the ALB, a target that refuses connections gets 503 (no healthy target) and the request is not retried here.
"""

from __future__ import annotations

import contextlib
import fnmatch
import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cdk_app.config import EnvironmentConfig
from cdk_app.node.names import NodeNames
from gateway.local import LOOPBACK

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
              "proxy-authenticate", "host", "content-length"}


@dataclass(frozen=True)
class Rule:
    priority: int
    node: str
    paths: tuple[str, ...] = ()
    header: tuple[str, tuple[str, ...]] | None = None

    def matches(self, path: str, headers: Any) -> bool:
        if self.paths and not any(fnmatch.fnmatchcase(path, pattern) for pattern in self.paths):
            return False
        if self.header is not None:
            name, values = self.header
            value = headers.get(name)
            if value is None or not any(fnmatch.fnmatch(value.lower(), v.lower()) for v in values):
                return False
        return True


@dataclass(frozen=True)
class Routing:
    rules: tuple[Rule, ...]
    default: str

    def node_for(self, path: str, headers: Any) -> str:
        for rule in self.rules:
            if rule.matches(path, headers):
                return rule.node
        return self.default


def routing_from_template(compute: dict[str, Any], config: EnvironmentConfig) -> Routing:
    """The listener's rules and default action, each target group resolved to its node through its service."""
    resources = compute["Resources"]
    node_of_group = {}
    for node in config.nodes:
        service = resources[NodeNames(node.name).logical_id("Service")]["Properties"]
        for balancer in service["LoadBalancers"]:
            node_of_group[balancer["TargetGroupArn"]["Ref"]] = node.name
    listeners = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
                 and r["Properties"]["DefaultActions"][0]["Type"] == "forward"]
    (listener,) = listeners
    default = node_of_group[listener["DefaultActions"][0]["TargetGroupArn"]["Ref"]]
    rules = []
    for resource in resources.values():
        if resource["Type"] != "AWS::ElasticLoadBalancingV2::ListenerRule":
            continue
        props = resource["Properties"]
        paths: tuple[str, ...] = ()
        header = None
        for condition in props["Conditions"]:
            if condition["Field"] == "path-pattern":
                paths = tuple(condition["PathPatternConfig"]["Values"])
            elif condition["Field"] == "http-header":
                config_ = condition["HttpHeaderConfig"]
                header = (config_["HttpHeaderName"], tuple(config_["Values"]))
            else:
                raise ValueError(f"the stand-in does not apply {condition['Field']} conditions")
        rules.append(Rule(props["Priority"], node_of_group[props["Actions"][0]["TargetGroupArn"]["Ref"]], paths,
                          header))
    return Routing(tuple(sorted(rules, key=lambda r: r.priority)), default)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that closes its keep-alive connection (a test ending) is not an error of the stand-in."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class AlbStandIn:
    def __init__(self, routing: Routing, backends: dict[str, int]) -> None:
        self.routing = routing
        self.backends = dict(backends)  # node -> gateway port
        self.routed: dict[str, int] = {}
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = urllib.parse.urlsplit(self.path).path
                node = standin.routing.node_for(path, self.headers)
                standin.routed[node] = standin.routed.get(node, 0) + 1
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["X-Forwarded-For"] = self.client_address[0]
                connection = http.client.HTTPConnection(LOOPBACK, standin.backends[node], timeout=120)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    payload = response.read()
                except ConnectionRefusedError:
                    self._reply(503, [], b"")  # the ALB's answer with no healthy target
                    return
                finally:
                    connection.close()
                self._reply(response.status, [(k, v) for k, v in response.getheaders()
                                              if k.lower() not in HOP_BY_HOP], payload)

            def _reply(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

        self.server = _QuietServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"

    @contextlib.contextmanager
    def running(self) -> Iterator[AlbStandIn]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
