"""Nominal ASIC specs (hashrate, power) and matching the model names rigs really report.

The shipped table is ``tui/data/models.csv`` (columns ``model, hashrate_ths, power_w, source``);
the config can override or add models (``[models."S19j Pro"]``) and set ``power_w`` /
``hashrate_ths`` per rig.  No Textual here.

Matching (:meth:`Catalog.lookup`) works on a normalised key: case, spaces and punctuation are
ignored (``+`` is kept: M30S+ is not M30S++), vendor words (Antminer, WhatsMiner, AvalonMiner,
...), parenthesised firmware tags ("(BOS+)", "(Vnish 1.2.3)") and Whatsminer variant codes
("_V40", "_VK30") are dropped, "Hyd." means "Hydro", and Avalon's "A1366" equals "1366".  An exact
key match wins; otherwise the longest catalog model whose key is a whole-token prefix of the
reported name is used ("Antminer S21 Hyd." -> S21, but "S19k Pro" never -> S19, and "S19 XP"
never -> S19 since S19 XP itself is longer).  ASIC chip names Bitaxe reports (``BM1370``) map to
their board.
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.config import RigConfig

#: Where the shipped table lives (a package resource, so it works from the wheel).
DATA_PACKAGE = "tui.data"
DATA_FILE = "models.csv"

#: Reported power outside (0, MAX_POWER_W] is treated as "not reported" (firmware garbage).
MAX_POWER_W = 100_000.0
#: Longest reported model string we bother to look at (untrusted input).
MAX_NAME_LEN = 200

#: Words that name a vendor or product line rather than a model; dropped before matching.
_VENDOR_WORDS = frozenset(
    {"antminer", "bitmain", "whatsminer", "microbt", "avalonminer", "avalon", "canaan", "miner"}
)
#: "Hyd." / "Hydra" at the end of a token (also glued: "S21XPHyd") means "Hydro".
_HYDRO_RE = re.compile(r"hyd(?:ra)?$")
#: Whatsminer variant / revision codes: V10, VH40, VK30, VE40, VL20 ...
_VARIANT_RE = re.compile(r"v[a-z]{0,2}\d{1,3}")
#: Avalon writes A1366 or 1366.
_AVALON_RE = re.compile(r"a(\d{3,4}[a-z]*)")
#: Chip names (Bitaxe's ``ASICModel``) -> the board in the catalog.
_CHIP_ALIASES = {"bm1370": "Bitaxe Gamma"}
#: Tokens: runs of letters/digits, or a single '+' (so "XP+" and "XP +" read the same).
_TOKEN_RE = re.compile(r"[a-z0-9]+|\+")
_PARENS_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


@dataclass(frozen=True)
class ModelSpec:
    """Nominal figures of one model."""

    model: str
    hashrate_ths: float
    power_w: float
    source: str = ""

    def __post_init__(self) -> None:
        for name in ("hashrate_ths", "power_w"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{self.model}: {name} must be a finite number, got {v!r}")
            if v <= 0:
                raise ValueError(f"{self.model}: {name} must be positive, got {v!r}")

    @property
    def j_per_th(self) -> float:
        """Nominal efficiency, joules per terahash (= W per TH/s)."""
        return self.power_w / self.hashrate_ths


_WM_GLUED_RE = re.compile(r"(m\d{2}s\+{0,2})v[a-z]{0,2}\d{2,3}")


def _tokens(name: object) -> list[str]:
    if not isinstance(name, str):
        return []
    s = unicodedata.normalize("NFKC", name[:MAX_NAME_LEN]).casefold()
    s = _PARENS_RE.sub(" ", s)
    out: list[str] = []
    for i, tok in enumerate(_TOKEN_RE.findall(s)):
        if tok in _VENDOR_WORDS:
            continue
        if i > 0 and out and _VARIANT_RE.fullmatch(tok):
            continue
        tok = _HYDRO_RE.sub("hydro", tok)
        glued = _WM_GLUED_RE.fullmatch(tok)  # Whatsminer "M60SVK30": variant glued on
        if glued:
            tok = glued.group(1)
        m = _AVALON_RE.fullmatch(tok)
        if m:
            tok = m.group(1)
        out.append(tok)
    return out


def normalise(name: object) -> str:
    """The matching key of a model name: ``"Antminer S19j Pro"`` -> ``"s19jpro"``."""
    return "".join(_tokens(name))


@lru_cache(maxsize=1)
def _shipped_text() -> str:
    return resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")


def parse_csv(text: str) -> list[ModelSpec]:
    """Parse a catalog CSV (header ``model,hashrate_ths,power_w,source``); raise ValueError."""
    reader = csv.DictReader(io.StringIO(text))
    need = {"model", "hashrate_ths", "power_w", "source"}
    if reader.fieldnames is None or not need <= {f.strip() for f in reader.fieldnames}:
        raise ValueError(f"catalog header must have columns {sorted(need)}")
    specs: list[ModelSpec] = []
    for lineno, row in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("model") or row["model"].startswith("#"):
            continue
        try:
            specs.append(
                ModelSpec(
                    row["model"], float(row["hashrate_ths"]), float(row["power_w"]), row["source"]
                )
            )
        except ValueError as e:
            raise ValueError(f"{DATA_FILE}:{lineno}: {e}") from None
    return specs


class Catalog:
    """Model specs keyed by normalised name; build with :meth:`load`."""

    def __init__(self, specs: list[ModelSpec] | tuple[ModelSpec, ...] = ()) -> None:
        self._by_key: dict[str, ModelSpec] = {}
        for spec in specs:
            key = normalise(spec.model)
            if key:
                self._by_key[key] = spec  # later entries (overrides) replace earlier ones
        # Longest keys first, so prefix matching prefers "s21xphydro" over "s21xp" over "s21".
        self._keys_longest_first = sorted(self._by_key, key=len, reverse=True)
        self._cache: dict[str, ModelSpec | None] = {}  # a site reports few distinct names

    @classmethod
    def load(cls, overrides: Mapping[str, ModelSpec] | None = None) -> Catalog:
        """The shipped table, with ``overrides`` (by model name, as in the config) on top.

        An override whose name matches a shipped model (after normalisation) replaces it;
        any other adds a model.
        """
        specs = parse_csv(_shipped_text())
        for name, spec in (overrides or {}).items():
            specs.append(
                spec if normalise(spec.model) == normalise(name) else replace(spec, model=name)
            )
        return cls(specs)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, model: str) -> ModelSpec | None:
        """The spec whose normalised name equals ``model``'s (no prefix fallback)."""
        return self._by_key.get(normalise(model))

    def lookup(self, reported: str | None) -> ModelSpec | None:
        """The spec for a model name as a rig reports it, or None.  Never raises."""
        if not isinstance(reported, str):
            return None
        try:
            return self._cache[reported]
        except KeyError:
            pass
        try:
            spec = self._lookup(reported)
        except Exception:  # untrusted input: a lookup must never take the dashboard down
            spec = None
        if len(reported) <= MAX_NAME_LEN and len(self._cache) < 4096:
            self._cache[reported] = spec
        return spec

    def _lookup(self, reported: str | None) -> ModelSpec | None:
        toks = _tokens(reported)
        if not toks:
            return None
        key = "".join(toks)
        if key in self._by_key:
            return self._by_key[key]
        for tok in toks:
            alias = _CHIP_ALIASES.get(tok)
            if alias is not None:
                spec = self._by_key.get(normalise(alias))
                if spec is not None:
                    return spec
        # Whole-token prefixes of the reported name, longest first.
        bounds = set()
        n = 0
        for tok in toks[:-1]:
            n += len(tok)
            bounds.add(n)
        for k in self._keys_longest_first:
            if len(k) in bounds and key.startswith(k):
                rest = key[len(k):]
                # "S21+ Hyd." or "S21 Hyd." is another machine than the S21: a different
                # J/TH would silently skew the power estimate, so no match beats a wrong one.
                if rest.startswith("+") or "hydro" in rest:
                    return None
                return self._by_key[k]
        return None

    def spec_for_rig(self, rig: RigConfig | None, reported: str | None) -> ModelSpec | None:
        """The nominal spec for one rig: the configured model (else the reported one), with
        the rig's own ``hashrate_ths`` / ``power_w`` from the config applied on top.

        A per-rig ``hashrate_ths`` alone keeps the model's J/TH (power scales with it).  A rig
        with both set needs no catalog entry.
        """
        spec = None
        if rig is not None and rig.model:
            spec = self.lookup(rig.model)
        if spec is None:
            spec = self.lookup(reported)
        if rig is None or (rig.hashrate_ths is None and rig.power_w is None):
            return spec
        src = f"config (rig {rig.name})"
        if spec is None:
            if rig.hashrate_ths is None or rig.power_w is None:
                return None
            return ModelSpec(rig.model or reported or rig.name, rig.hashrate_ths, rig.power_w, src)
        if rig.hashrate_ths is not None and rig.power_w is not None:
            return replace(spec, hashrate_ths=rig.hashrate_ths, power_w=rig.power_w, source=src)
        if rig.hashrate_ths is not None:
            return replace(
                spec,
                hashrate_ths=rig.hashrate_ths,
                power_w=spec.j_per_th * rig.hashrate_ths,
                source=src,
            )
        assert rig.power_w is not None
        return replace(spec, power_w=rig.power_w, source=src)


def _finite_nonneg(x: object) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) and x >= 0 else None


def resolve_power(
    reading_power_w: float | None,
    live_hashrate_ths: float | None,
    rig: RigConfig | None,
    spec: ModelSpec | None,
) -> tuple[float | None, bool]:
    """``(watts, estimated)`` for one rig.

    1. Power the rig reports, when it is a plausible number (0 < W <= 100 kW);
    2. else the ``power_w`` configured for the rig (not an estimate);
    3. else the model's nominal J/TH x live hashrate (``estimated=True``);
    4. else ``(None, False)``.
    """
    reported = _finite_nonneg(reading_power_w)
    if reported is not None and 0 < reported <= MAX_POWER_W:
        return reported, False
    if rig is not None and rig.power_w is not None:
        return float(rig.power_w), False
    hr = _finite_nonneg(live_hashrate_ths)
    if spec is not None and hr is not None:
        return spec.j_per_th * hr, True
    return None, False
