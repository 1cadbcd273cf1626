"""The HAProxy configuration of the data path, rendered from the gateway's settings into its runtime directory.

HAProxy terminates client HTTP/1.1, checks the token at the headers (before any body byte is read and before any
`100 Continue`), refuses what Chroma must never see, and streams the rest to Chroma on loopback over keep-alive
connections. What is ours stays in Python: the token set (a map of SHA-256 digests that `gateway.runtime_api`
replaces at run time, without a reload), readiness, the access log's metrics, supervision and draining.

No raw token ever becomes configuration syntax: only hex digests are written to the map.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path

from gateway.settings import LIVENESS_PATH, NODE_HEADER, READINESS_PATH, Settings

TOKENS_MAP = "tokens.map"
# Path fragments (`/collections/<id>`) of the collections the start check quarantined (gateway.node_start).
QUARANTINE_LIST = "quarantined.lst"
# Holds writes while a recovery point is copied (gateway.snapshot): the map holds `writes 1` while they are held.
MODE_MAP = "mode.map"
# Tenant placement (several nodes): the tenants placed on this node, and those placed on others.
TENANTS_HERE_MAP = "tenants-here.map"
TENANTS_ELSEWHERE_MAP = "tenants-elsewhere.map"
# A tenant move (gateway.tenant_moves): tenants whose writes are held here, and tenants accepted here while they move in.
HELD_TENANTS_MAP = "tenants-held.map"
INCOMING_TENANTS_MAP = "tenants-incoming.map"
# Old collection id -> the id of its copy here, for collections moved in with their tenant.
COLLECTION_ALIASES_MAP = "collection-aliases.map"
COLLECTION_PATH = r"^/api/v2/tenants/[^/]+/databases/[^/]+/collections/[0-9a-f-]{36}"
TENANT_HOLD_MESSAGE = ("writes to this tenant are paused while it moves to another node (planned maintenance); reads "
                       "go on; retry after Retry-After")
MISDIRECTED_MESSAGE = ("this tenant is placed on another node: the load balancer routes /api/v2/tenants/<tenant>/ "
                       "by tenant (use the tenant name exactly as configured, not percent-encoded)")
WRITES_HELD_KEY = "writes"
WRITE_BACKEND = "chroma_write"
HOLD_RETRY_AFTER_SECONDS = 2
# Chroma's reads that are POSTs (a JSON body): everything else that is not GET or HEAD changes the directory.
READ_POST_SUFFIXES = ("/get", "/query", "/search", "/count")
HOLD_MESSAGE = "writes are paused for a few seconds while a recovery point is taken; retry after Retry-After"
QUARANTINE_MESSAGE = ("this collection failed the node's start check (its index disagrees with Chroma's records "
                      "after a crash) and is out of service until it is restored: see "
                      "runbooks/collection-quarantined.md")
ADMIN_SOCKET = "admin.sock"
CONFIG_FILE = "haproxy.cfg"
ERRORS_DIR = "errors"
# Longest request target answered with 414; a request line or header block beyond the buffer gets HAProxy's 400.
MAX_URL_BYTES = 8_192
# HAProxy's per-connection buffer: request line + headers must fit in it (minus the rewrite reserve).
BUFFER_BYTES = 16_384
REWRITE_RESERVE_BYTES = 1_024
# An unprivileged uid/gid for HAProxy when the gateway itself runs as root (tests on a CI machine do).
NOBODY = 65534
# The access line: fields separated by one space, the path last (it is the only field that is not a closed set).
ACCESS_LOG_FORMAT = ("%[var(txn.start_us)] %[date(0,us)] %ST %U %B %[var(txn.request_id)] %[var(txn.auth)] "
                     "%[var(txn.client)] %ts %HM %HP")
AUTH_HINT = "send 'Authorization: Bearer <token>' or 'X-Chroma-Token: <token>'"


def error_body(error: str, message: str) -> str:
    """Errors shaped like Chroma's own ({"error": name, "message": text}), so its clients raise them cleanly."""
    return json.dumps({"error": error, "message": message})


def _errorfile(status: int, error: str, message: str, retry_after: bool = False) -> str:
    body = error_body(error, message)
    head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", "Content-Type: application/json",
            "Cache-Control: no-cache", f"Content-Length: {len(body.encode())}"]
    if retry_after:
        head.append("Retry-After: 1")
    return "\r\n".join(head) + "\r\n\r\n" + body


def error_files(settings: Settings) -> dict[int, str]:
    """HAProxy's own answers (framing errors, timeouts, Chroma unreachable) as Chroma-shaped JSON."""
    return {
        400: _errorfile(400, "BadRequest", "malformed HTTP request, or request line and headers over "
                                           f"{BUFFER_BYTES - REWRITE_RESERVE_BYTES} bytes"),
        403: _errorfile(403, "Forbidden", "request refused"),
        405: _errorfile(405, "MethodNotAllowed", "method not allowed"),
        408: _errorfile(408, "RequestTimeout", f"request not received within {settings.header_timeout_seconds:g} s"),
        413: _errorfile(413, "PayloadTooLarge", f"request body exceeds {settings.max_body_bytes} bytes"),
        500: _errorfile(500, "InternalError", "gateway error"),
        502: _errorfile(502, "BadGateway", "chroma closed the connection or sent an invalid response; retry"),
        503: _errorfile(503, "ServiceUnavailable", "chroma is not reachable (starting or restarting); retry shortly",
                        retry_after=True),
        504: _errorfile(504, "GatewayTimeout", f"chroma did not answer within {settings.upstream_timeout_seconds:g} s"),
    }


def _ms(seconds: float) -> str:
    """HAProxy timeouts take integers: milliseconds."""
    return f"{round(seconds * 1000)}ms"


def _return(status: int, error: str, message: str, retry_after: int | None = None) -> str:
    body = error_body(error, message).replace("\\", "\\\\").replace('"', '\\"')
    header = f" hdr Retry-After {retry_after}" if retry_after else ""
    return f'http-request return status {status} content-type application/json{header} string "{body}"'


def _placement(settings: Settings, runtime_dir: Path) -> str:
    """The tenant a request names, from its path (decoded as Chroma decodes it) or, for tenant creation, from its
    body; and the node's own guard of tenant placement (the load balancer's path rules route; this refuses what
    they let through by mistake: another case, %XX, a tenant created on the wrong node), which a tenant moving in
    (gateway.tenant_moves) passes. No guard on a lone default node."""
    rules = [
        "    # The tenant a request names (placement, and writes held while a tenant moves).",
        "    http-request set-var(txn.tenant) path,field(5,/),url_dec if { path_beg /api/v2/tenants/ }",
        "    http-request set-var(txn.tenant) req.body,json_query('$.name') if METH_POST { path /api/v2/tenants }",
        f"    acl tenant_incoming var(txn.tenant),map({runtime_dir / INCOMING_TENANTS_MAP}) -m found",
        "    # A collection moved in keeps its old id for clients that hold it: the path names its copy here.",
        f"    http-request set-var(txn.alias) path,field(9,/),map({runtime_dir / COLLECTION_ALIASES_MAP}) "
        f"if {{ path_reg {COLLECTION_PATH}(/|$) }}",
        "    http-request set-var-fmt(txn.alias_rest) \"/%[path,field(10,/,0)]\" if { var(txn.alias) -m found } "
        f"{{ path_reg {COLLECTION_PATH}/ }}",
        "    http-request set-path \"/api/v2/tenants/%[path,field(5,/)]/databases/%[path,field(7,/)]/collections/"
        "%[var(txn.alias)]%[var(txn.alias_rest)]\" if { var(txn.alias) -m found }",
    ]
    if settings.default_node and not settings.tenants_elsewhere:
        return "\n".join(rules) + "\n"
    here, elsewhere = runtime_dir / TENANTS_HERE_MAP, runtime_dir / TENANTS_ELSEWHERE_MAP
    refuse = _return(421, "MisdirectedRequest", MISDIRECTED_MESSAGE)
    rules += [
        "    # Tenant placement: refused (421) unless the tenant belongs on this node (or is moving in).",
        f"    acl tenant_here var(txn.tenant),map({here}) -m found",
        f"    acl tenant_elsewhere var(txn.tenant),map({elsewhere}) -m found",
    ]
    if settings.default_node:
        rules.append(f"    {refuse} if tenant_elsewhere !tenant_incoming")
    else:
        rules.append(f"    {refuse} if {{ var(txn.tenant) -m found }} !tenant_here !tenant_incoming")
        rules.append(f"    {refuse} if METH_POST {{ path /api/v2/tenants }} !tenant_here !tenant_incoming")
    return "\n".join(rules) + "\n"


def render(settings: Settings, runtime_dir: Path, run_as_root: bool) -> str:
    """The configuration text; error files referenced by it are written by `write`."""
    upstream = settings.upstream_url.removeprefix("http://")
    errors = runtime_dir / ERRORS_DIR
    tokens_map = runtime_dir / TOKENS_MAP
    privileges = f"    uid {NOBODY}\n    gid {NOBODY}\n" if run_as_root else ""
    errorfiles = "".join(f"    errorfile {status} {errors / f'{status}.http'}\n" for status in error_files(settings))
    placement = _placement(settings, runtime_dir)
    return f"""# Rendered by gateway/haproxy_config.py at start: edit that file, not this one.
global
    log 127.0.0.1:{settings.access_log_port} len 8192 format raw local0
    stats socket {runtime_dir / ADMIN_SOCKET} mode 600 level admin
    maxconn {settings.max_connections}
    # One thread: the task's CPUs belong to Chroma; one HAProxy thread serves far more requests than Chroma can.
    nbthread 1
    tune.bufsize {BUFFER_BYTES}
    tune.maxrewrite {REWRITE_RESERVE_BYTES}
    hard-stop-after {_ms(settings.drain_seconds)}
{privileges}
defaults
    mode http
    log global
    option http-keep-alive
    option dontlognull
    # Chroma on loopback connects at once or refuses: never wait, never mark it down, answer 503 at once.
    retries 0
    timeout connect 2s
    timeout http-request {_ms(settings.header_timeout_seconds)}
    timeout client {_ms(settings.client_timeout_seconds)}
    timeout client-fin 1s
    timeout http-keep-alive {_ms(settings.keepalive_seconds)}
    timeout server {_ms(settings.upstream_timeout_seconds)}
{errorfiles}
frontend gateway
    bind {settings.listen_address}:{settings.port}
    maxconn {settings.max_connections}
    log-format "{ACCESS_LOG_FORMAT}"
    acl open_path path {LIVENESS_PATH} {READINESS_PATH}
    http-request set-var(txn.start_us) date(0,us)
    http-request set-var(txn.request_id) req.fhdr(x-request-id) if {{ req.fhdr(x-request-id) -m reg ^[A-Za-z0-9._-]{{1,128}}$ }}
    http-request set-var(txn.request_id) uuid if !{{ var(txn.request_id) -m found }}
    # The client is the address the load balancer appended last; a client-chosen entry is never trusted.
    http-request set-var(txn.client) req.hdr(x-forwarded-for,-1) if {{ req.hdr(x-forwarded-for,-1) -m reg ^[0-9A-Fa-f:.]{{2,45}}$ }}
    http-request set-var(txn.client) src if !{{ var(txn.client) -m found }}
    http-after-response set-header X-Request-Id %[var(txn.request_id)] if {{ var(txn.request_id) -m found }}
    http-after-response set-header {NODE_HEADER} {settings.node}
    # Liveness and readiness need no token; they are answered by the control plane and never reach Chroma.
    http-request set-log-level silent if open_path
    http-request allow if open_path
    # The token, from `Authorization: Bearer <t>` or else `X-Chroma-Token: <t>`, compared by its SHA-256 digest.
    http-request set-var(txn.token) req.fhdr(authorization),regsub("^[Bb][Ee][Aa][Rr][Ee][Rr] +","") if {{ req.fhdr(authorization) -m reg -i "^bearer +[^ ]" }}
    http-request set-var(txn.token) req.fhdr(x-chroma-token) if !{{ var(txn.token) -m found }} {{ req.fhdr(x-chroma-token) -m found }}
    http-request set-var(txn.auth) str(missing) if !{{ var(txn.token) -m found }}
    http-request set-var(txn.auth) str(invalid) if {{ var(txn.token) -m found }} !{{ var(txn.token),digest(sha256),hex,lower,map({tokens_map}) -m found }}
    http-request set-var(txn.auth) str(ok) if !{{ var(txn.auth) -m found }}
    {_return(401, "AuthorizationError", "missing token: " + AUTH_HINT)} if {{ var(txn.auth) -m str missing }}
    {_return(401, "AuthorizationError", "invalid token: " + AUTH_HINT)} if {{ var(txn.auth) -m str invalid }}
    http-request unset-var(txn.token)
    {_return(400, "BadRequest", "protocol upgrades are not supported")} if {{ req.hdr(upgrade) -m found }}
    {_return(405, "MethodNotAllowed", "CONNECT is not supported")} if METH_CONNECT
    # Refused from the headers, before any body byte is read.
    {_return(413, "PayloadTooLarge", f"request body exceeds {settings.max_body_bytes} bytes")} if {{ req.hdr_val(content-length) gt {settings.max_body_bytes} }}
    {_return(414, "URITooLong", f"request target exceeds {MAX_URL_BYTES} bytes")} if {{ url_len gt {MAX_URL_BYTES} }}
    {_return(400, "BadRequest", "request target must be a path")} if !{{ url_beg / }}
    # A collection whose index failed the node's start check: nothing reaches it until it is restored.
    {_return(503, "CollectionQuarantined", QUARANTINE_MESSAGE)} if {{ path -m sub -f {runtime_dir / QUARANTINE_LIST} }}
    # Only now, authenticated and within limits: wait for the body (up to the buffer) before forwarding it, so a
    # slow small body gets 408 and never ties up Chroma; a larger one streams.
    http-request wait-for-body time {_ms(settings.header_timeout_seconds)} at-least {BUFFER_BYTES // 2}
    http-request del-header authorization
    http-request del-header x-chroma-token
    http-request set-header X-Request-Id %[var(txn.request_id)]
{placement}    # While a recovery point is copied, writes wait (503 + Retry-After); reads go on. Last rule before the backend:
    # a write that passed it is on chroma_write at once, where the snapshot counts it in flight.
    acl read_request method GET HEAD
    acl read_request path_end {" ".join(READ_POST_SUFFIXES)}
    {_return(503, "WritesPaused", HOLD_MESSAGE, HOLD_RETRY_AFTER_SECONDS)} if !open_path !read_request {{ str({WRITES_HELD_KEY}),map({runtime_dir / MODE_MAP}) -m found }}
    {_return(503, "WritesPaused", TENANT_HOLD_MESSAGE, HOLD_RETRY_AFTER_SECONDS)} if !open_path !read_request {{ var(txn.tenant),map({runtime_dir / HELD_TENANTS_MAP}) -m found }}
    use_backend control if open_path
    use_backend {WRITE_BACKEND} if !read_request
    default_backend chroma

backend chroma
    # Any idle connection to Chroma may carry any client's next request (Chroma keeps no per-connection state).
    http-reuse always
    server chroma {upstream}

backend {WRITE_BACKEND}
    # The same Chroma: a backend of its own only so that writes in flight can be counted (`show stat`).
    http-reuse always
    server chroma {upstream}

backend control
    timeout server 5s
    server control 127.0.0.1:{settings.control_port}
"""


def write(settings: Settings, runtime_dir: Path, run_as_root: bool) -> Path:
    """Write the configuration, its error files and an empty token map (nothing is accepted until tokens load)."""
    (runtime_dir / ERRORS_DIR).mkdir(parents=True, exist_ok=True)
    for status, content in error_files(settings).items():
        (runtime_dir / ERRORS_DIR / f"{status}.http").write_text(content)
    (runtime_dir / TOKENS_MAP).write_text("")
    (runtime_dir / QUARANTINE_LIST).write_text("")
    (runtime_dir / MODE_MAP).write_text("")  # writes flow  # the start check, if any, writes the list before HAProxy starts
    config = runtime_dir / CONFIG_FILE
    (runtime_dir / TENANTS_HERE_MAP).write_text("".join(f"{t} 1\n" for t in settings.node_tenants))
    (runtime_dir / TENANTS_ELSEWHERE_MAP).write_text("".join(f"{t} 1\n" for t in settings.tenants_elsewhere))
    for moving in (HELD_TENANTS_MAP, INCOMING_TENANTS_MAP, COLLECTION_ALIASES_MAP):  # a move's, before start
        (runtime_dir / moving).write_text("")
    config.write_text(render(settings, runtime_dir, run_as_root))
    return config
