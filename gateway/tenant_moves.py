"""Tenant moves between nodes (issue #14, chroma-ops move-tenant): what a node holds or accepts while a tenant moves.

The operator's tool writes one control document per node, `<prefix>/tenant-moves.json`:
`{"id": ..., "held": [tenants], "incoming": [tenants]}`. The node's gateway polls it and applies it to HAProxy:
- held: writes naming the tenant are answered `503 WritesPaused` (reads go on): the copy it serves stays final;
- incoming: the tenant is accepted here though the deployed placement puts it elsewhere, so the tool can copy it in
  (addressed with `X-Chroma-Node`) and the load balancer can route it here before this node is redeployed;
- aliases: `{old collection id: id here}`. Chroma gives a copied collection a new id, and clients address
  collections by id: a request naming a moved collection's old id reaches its copy here. Kept after the move.
Once applied, and once no write is in flight, the node answers `<prefix>/tenant-moves/<id>.json`. A restarted
gateway applies the current document before it serves. An empty document (no tenants) ends a move.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway import haproxy_config
from gateway.files import write_atomically
from gateway.runtime_api import RuntimeApi

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger("gateway.tenant_moves")

CONTROL_KEY = "tenant-moves.json"
ANSWERS_FOLDER = "tenant-moves"
_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class MoveControl:
    control_id: str
    held: tuple[str, ...] = ()
    incoming: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)


def control_key(prefix: str) -> str:
    return f"{prefix.strip('/')}/{CONTROL_KEY}"


def answer_key(prefix: str, control_id: str) -> str:
    return f"{prefix.strip('/')}/{ANSWERS_FOLDER}/{control_id}.json"


def control_body(control: MoveControl) -> bytes:
    return json.dumps({"id": control.control_id, "held": list(control.held), "incoming": list(control.incoming),
                       "aliases": control.aliases}, sort_keys=True).encode()


def parse_control(body: bytes, tenant_name: re.Pattern[str]) -> MoveControl:
    """The document's fields, or ValueError naming what is wrong."""
    try:
        raw = json.loads(body)
        control_id, held, incoming = raw["id"], raw.get("held", []), raw.get("incoming", [])
        aliases = raw.get("aliases", {})
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a tenant-move control ({type(error).__name__}: {error})") from None
    if not isinstance(control_id, str) or not _ID.match(control_id):
        raise ValueError(f"tenant-move control id {control_id!r}: use 1-64 letters, digits and '-'")
    for name, tenants in (("held", held), ("incoming", incoming)):
        if not isinstance(tenants, list) or not all(isinstance(t, str) and tenant_name.match(t) for t in tenants):
            raise ValueError(f"tenant-move control {name} = {tenants!r}: use a list of tenant names")
    if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str) and _UUID.match(k)
                                                and _UUID.match(v) for k, v in aliases.items()):
        raise ValueError(f"tenant-move control aliases = {aliases!r}: map old collection ids to ids here "
                         "(lowercase UUIDs)")
    return MoveControl(control_id, tuple(held), tuple(incoming), dict(aliases))


class S3MoveControl:
    """The node's control document in the requests bucket, read only when it changed (ETag)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str, tenant_name: re.Pattern[str]) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        self._tenant_name = tenant_name
        self._etag: str | None = None

    def poll(self) -> MoveControl | None:
        """The document if it changed since the last poll; None if unchanged, missing or malformed."""
        from gateway.s3_documents import read_if_changed

        body, self._etag = read_if_changed(self._client, self._bucket, control_key(self._prefix), self._etag)
        if body is None:
            return None
        try:
            return parse_control(body, self._tenant_name)
        except ValueError as error:
            log.error("ignoring a malformed tenant-move control", extra={"event": "tenant_moves_invalid",
                                                                          "error": str(error)})
            return None

    def forget(self) -> None:
        """The next poll reads the document even if it did not change (its last application failed)."""
        self._etag = None

    def answer(self, control_id: str, outcome: dict[str, Any]) -> None:
        self._client.put_object(Bucket=self._bucket, Key=answer_key(self._prefix, control_id),
                                Body=json.dumps(outcome, sort_keys=True).encode(), ContentType="application/json")


class MoveMaps:
    """Applies a control document to HAProxy: its held and incoming maps, swapped atomically through the admin
    socket and written to their files (a restarted HAProxy reads them)."""

    def __init__(self, api: RuntimeApi, runtime_dir: Path) -> None:
        self._api = api
        self._held = runtime_dir / haproxy_config.HELD_TENANTS_MAP
        self._incoming = runtime_dir / haproxy_config.INCOMING_TENANTS_MAP
        self._aliases = runtime_dir / haproxy_config.COLLECTION_ALIASES_MAP
        self.applied = MoveControl("none")

    def write_files(self, control: MoveControl) -> None:
        """Before HAProxy starts."""
        for path, tenants in ((self._held, control.held), (self._incoming, control.incoming)):
            write_atomically(path, "".join(f"{t} 1\n" for t in sorted(set(tenants))))
        write_atomically(self._aliases, "".join(f"{old} {new}\n" for old, new in sorted(control.aliases.items())))
        self.applied = control

    def apply(self, control: MoveControl) -> None:
        """Aliases and incoming first, held last: a tenant is never refused here on its way in, nor written on its
        way out."""
        self.write_files(control)
        self._api.replace_map_entries(self._aliases, control.aliases)
        self._api.replace_map(self._incoming, control.incoming)
        self._api.replace_map(self._held, control.held)
