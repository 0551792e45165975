"""What to poll, resolved from the command line: the one description every face shares.

No Textual and no I/O here; :func:`make_sources` builds the source objects (imported lazily).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tui.config import SiteConfig
from tui.model import ChainSource, PriceSource

DEFAULT_MEMPOOL = "https://mempool.space"


@dataclass(frozen=True)
class SourceSpec:
    """Which sources to poll, resolved from the command line (no secrets on argv)."""

    kind: str  #: "mempool" or "bitcoind"
    url: str
    rpc_cookie: Path | None = None
    rpc_user: str | None = None
    rpc_password: str | None = None
    price_url: str | None = None  #: mempool instance for /api/v1/prices (None: fixed price)
    fixed_price: float | None = None
    demo: bool = False
    demo_seed: int = 2026
    demo_scenario: str = "jan2026"
    chain_interval: float = 30.0
    price_interval: float = 60.0
    site: SiteConfig | None = None  #: the rigs to poll (None: no site configured)
    ascii: bool = False  #: draw with ASCII only (--ascii, or a locale that isn't UTF-8)
    mouse: bool = True

    @property
    def label(self) -> str:
        return f"{self.kind} {urlsplit(self.url).netloc}"


def make_sources(
    spec: SourceSpec, clock: Callable[[], float] = time.time
) -> tuple[ChainSource, PriceSource]:
    """The chain and price source objects for a resolved spec."""
    from tui.sources.bitcoind import BitcoindSource
    from tui.sources.mempool import MempoolSource
    from tui.sources.price import FixedPrice, MempoolPrice

    chain_src: ChainSource
    if spec.kind == "bitcoind":
        chain_src = BitcoindSource(spec.url, cookie_path=spec.rpc_cookie, user=spec.rpc_user,
                                   password=spec.rpc_password, clock=clock)
    else:
        chain_src = MempoolSource(spec.url, clock=clock)
    price_src: PriceSource
    if spec.price_url is None:
        price_src = FixedPrice(spec.fixed_price or 0.0)
    else:
        price_src = MempoolPrice(spec.price_url, clock=clock)
    return chain_src, price_src
