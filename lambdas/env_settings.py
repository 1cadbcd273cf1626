"""A Lambda function's settings, read from its environment into a frozen dataclass at cold start.

Each field names its variable (`variable("FILE_SYSTEM_ID")`). A missing, empty or malformed value fails the
function before it does any work, with the variable's name and what is allowed, never as a silent default.
Bundled with every function (see `cdk_app/constructs/python_function.py`): standard library only.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")
_META = "env_variable"


class SettingsError(ValueError):
    """One or more environment variables are missing or malformed; the message names each one."""


# The node every environment has (cdk_app.config.PRIMARY_NODE; functions are bundled without cdk_app).
PRIMARY_NODE = "primary"


def powertools_service(environment: str, function: str, node: str = PRIMARY_NODE) -> str:
    """Powertools' service name of `function` in `environment` (for a node's own function, of that node: the
    primary's keeps the name it had before nodes existed), also a dimension of every metric it publishes."""
    return f"chroma-{environment}-{function}" + ("" if node == PRIMARY_NODE else f"-{node}")


def variable(name: str, *, optional: bool = False) -> Any:
    """A dataclass field read from environment variable `name`; `optional` str fields accept empty (-> None)."""
    return dataclasses.field(metadata={_META: name, "optional": optional})


def _convert(name: str, raw: str, kind: type) -> tuple[Any, str | None]:
    if kind is str:
        return raw, None
    try:
        number = kind(raw)
    except ValueError:
        return None, f"{name} = {raw!r}: expected a{'n integer' if kind is int else ' number'}"
    if number <= 0:
        return None, f"{name} = {raw!r}: must be greater than 0"
    return number, None


def read_settings(cls: type[T], env: Mapping[str, str]) -> T:
    """`cls` filled from `env`; raises SettingsError naming every missing or malformed variable at once."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name, optional = field.metadata[_META], field.metadata["optional"]
        raw = env.get(name, "")
        if not raw:
            if optional:
                values[field.name] = None
                continue
            problems.append(f"{name} is not set")
            continue
        kind = next(t for t in (str, int, float) if t in (hints[field.name], *typing.get_args(hints[field.name])))
        values[field.name], problem = _convert(name, raw, kind)
        if problem:
            problems.append(problem)
    if problems:
        raise SettingsError(f"{cls.__name__}: {'; '.join(problems)}")
    return cls(**values)
