"""Engine views as JSON and back, for a dashboard attached to a daemon (pure: no I/O).

A view is a tree of frozen dataclasses.  :func:`encode` writes each as an object tagged
``"__t": "<ClassName>"``; :func:`decode` rebuilds only the classes listed in :data:`TYPES`
(an allow-list: the reply of a daemon is data, never code) and checks each object's fields,
so a malformed or hostile reply is a :class:`WireError`, not an arbitrary object.

Non-finite floats (JSON has none) travel as ``{"__f": "nan" | "inf" | "-inf"}``.  Lists come
back as tuples (the dataclasses are frozen and hashable); the view's mappings come back
read-only.  The dashboard is not sent: the attached side recomputes it from the chain and
price snapshots with its own clock (pure and cheap), so countdowns stay live.
"""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any

from tui.alerts import Alert, AlertEvent
from tui.economics import Hashprice, RigEconomics, SiteTotals
from tui.model import (
    Block,
    BlockWindow,
    ChainSnapshot,
    DifficultyAdjustment,
    Hashboard,
    HashratePoint,
    PriceSnapshot,
)
from tui.site import PowerNow, RigRow, SiteView

#: Bumped when a class's fields change incompatibly; the attached side checks it.
WIRE_VERSION = 3
#: Everything a view may contain, by name.  Nothing else is ever constructed.
_CLASSES: tuple[type, ...] = (ChainSnapshot, Block, HashratePoint, PriceSnapshot, SiteView,
                              RigRow, SiteTotals, RigEconomics, Hashprice, Alert, AlertEvent,
                              Hashboard, PowerNow, DifficultyAdjustment, BlockWindow)
TYPES: dict[str, type] = {c.__name__: c for c in _CLASSES}
MAX_DEPTH = 12


class WireError(ValueError):
    """A reply that is not a view this minertop understands (one line)."""


def _fields(cls: type) -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def encode(obj: Any) -> Any:
    """``obj`` (dataclasses of :data:`TYPES`, and views' parts) as JSON-ready data."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return {"__f": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        name = type(obj).__name__
        out: dict[str, Any] = {"__t": name}
        for f in dataclasses.fields(obj):
            if f.init:
                out[f.name] = encode(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [encode(x) for x in obj]
    if isinstance(obj, (dict, MappingProxyType)):
        return {str(k): encode(v) for k, v in obj.items()}
    raise TypeError(f"can't send a {type(obj).__name__}")


def decode(data: Any, depth: int = 0) -> Any:
    """The inverse of :func:`encode`, for the allow-listed classes only."""
    if depth > MAX_DEPTH:
        raise WireError("reply nested too deeply")
    if data is None or isinstance(data, (bool, int, float, str)):
        return data
    if isinstance(data, list):
        return tuple(decode(x, depth + 1) for x in data)
    if not isinstance(data, dict):
        raise WireError(f"unexpected {type(data).__name__} in the reply")
    if "__f" in data:
        v = data["__f"]
        if v not in ("nan", "inf", "-inf") or len(data) != 1:
            raise WireError("bad number in the reply")
        return float(v)
    if "__t" in data:
        name = data["__t"]
        cls = TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            raise WireError(f"unknown type {str(name)[:40]!r} in the reply")
        fields = _fields(cls)
        args = {k: decode(v, depth + 1) for k, v in data.items() if k != "__t"}
        unknown = set(args) - set(fields)
        if unknown:
            raise WireError(f"{name}: unexpected fields {sorted(unknown)[:5]}")
        if isinstance(args.get("counts"), tuple):  # pragma: no cover - defensive
            raise WireError(f"{name}: bad counts")
        try:
            return cls(**args)
        except TypeError as e:
            raise WireError(f"{name}: {e}") from None
    return {str(k): decode(v, depth + 1) for k, v in data.items()}


def read_only(mapping: Any) -> MappingProxyType[str, Any]:
    if not isinstance(mapping, dict):
        raise WireError("expected an object")
    return MappingProxyType(dict(mapping))
