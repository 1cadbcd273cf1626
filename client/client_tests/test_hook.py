"""What the package relies on in chromadb. If a chromadb release changes it, this fails first and says what."""

from __future__ import annotations

import inspect
from importlib.metadata import version

from chromadb.api.fastapi import FastAPI
from chromadb.api.models.Collection import Collection

from chroma_on_aws_client.api import ResilientFastAPI


def test_the_chromadb_release_is_in_the_supported_range() -> None:
    major, minor, *_ = (int(part) for part in version("chromadb").split("."))
    assert (major, minor) == (1, 5), "chromadb moved past 1.5: re-check api.py against its FastAPI, then the range"


def test_the_http_implementation_still_has_what_the_subclass_overrides_and_uses() -> None:
    for name in ("_make_request", "_submit_batch", "_add", "_upsert", "_update", "_delete", "get_max_batch_size",
                 "_raise_chroma_error"):
        assert hasattr(FastAPI, name), f"chromadb's FastAPI has no {name} any more"
    assert list(inspect.signature(FastAPI._make_request).parameters) == ["self", "method", "path", "kwargs"]
    assert list(inspect.signature(FastAPI._submit_batch).parameters) == ["self", "batch", "url"]
    for name in ("_add", "_upsert", "_update", "_delete"):
        ours = list(inspect.signature(getattr(ResilientFastAPI, name)).parameters)
        theirs = list(inspect.signature(getattr(FastAPI, name)).parameters)
        assert ours == theirs, f"{name}: chromadb now passes {theirs}"
    # FastAPI builds its httpx session and api url in __init__, and sends every request through _make_request.
    source = inspect.getsource(FastAPI)
    assert "self._session = httpx.Client(" in source and "self._api_url = " in source


def test_collections_write_through_the_methods_the_subclass_batches() -> None:
    source = inspect.getsource(Collection)
    for call in ("self._client._add(", "self._client._upsert(", "self._client._update(", "self._client._delete("):
        assert call in source, f"Collection no longer calls {call}"
