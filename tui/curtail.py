"""Which machines to switch off at the power price in force (pure: no I/O, no Textual).

minertop only advises: it never switches a machine.  For each rig that draws power now
(ok, stale or stuck), its *operating* margin is revenue − power cost at the price in force:
the per-rig overhead (hosting, opex) is paid whether the machine runs or not, so it does not
change the decision.  A rig whose operating margin is negative loses money by running;
switching it off saves that much per day.  The same is worked out at the next tariff
period's price, so the operator sees what the evening peak (or the night) changes.

A rig with its own ``electricity_usd_kwh`` keeps its price in both columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tui.site import RigRow

HOURS_PER_DAY = 24.0
#: Rigs whose power draw counts (an offline rig draws nothing we know of).
DRAWING = ("ok", "stale", "stuck")


@dataclass(frozen=True)
class CurtailRow:
    rig_id: str
    name: str
    model: str
    status: str
    revenue_usd_day: float
    power_w: float
    power_estimated: bool
    usd_kwh_now: float
    margin_now: float  #: revenue − power cost at the price in force now, $/day
    usd_kwh_next: float | None  #: at the next period (None: no change coming)
    margin_next: float | None

    @property
    def saving_now(self) -> float:
        """$/day saved by switching it off now (0 when it earns more than its power)."""
        return max(0.0, -self.margin_now)

    @property
    def saving_next(self) -> float | None:
        return None if self.margin_next is None else max(0.0, -self.margin_next)


@dataclass(frozen=True)
class CurtailPlan:
    usd_kwh_now: float | None  #: the site's price in force now
    usd_kwh_next: float | None  #: the site's price from ``next_change_unix`` (None: none)
    next_change_unix: float | None
    rows: tuple[CurtailRow, ...]  #: worst operating margin first
    next_label: str | None = None  #: the next change in the site's local time, "Mon 14:00"

    @property
    def losing_now(self) -> tuple[CurtailRow, ...]:
        return tuple(r for r in self.rows if r.margin_now < 0)

    @property
    def losing_next(self) -> tuple[CurtailRow, ...]:
        return tuple(r for r in self.rows if r.margin_next is not None and r.margin_next < 0)

    @property
    def saving_now(self) -> float:
        return sum(r.saving_now for r in self.rows)

    @property
    def saving_next(self) -> float | None:
        if self.usd_kwh_next is None:
            return None
        return sum(r.saving_next or 0.0 for r in self.rows)

    @property
    def power_off_now_kw(self) -> float:
        return sum(r.power_w for r in self.losing_now) / 1000.0


def power_cost(power_w: float, usd_kwh: float) -> float:
    """$/day of ``power_w`` running all day at ``usd_kwh``."""
    return power_w / 1000.0 * HOURS_PER_DAY * usd_kwh


def plan(rows: Sequence[RigRow], *, usd_kwh_now: float | None, usd_kwh_next: float | None,
         next_change_unix: float | None, next_label: str | None = None) -> CurtailPlan:
    """Rank the rigs that draw power by their operating margin at the price in force."""
    out: list[CurtailRow] = []
    for r in rows:
        if r.status not in DRAWING or r.power_w is None or r.revenue is None:
            continue
        now_price = r.electricity_usd_kwh if r.electricity_usd_kwh is not None else usd_kwh_now
        if now_price is None:
            continue
        next_price = None
        if usd_kwh_next is not None:
            next_price = now_price if r.own_price else usd_kwh_next
        margin_now = r.revenue - power_cost(r.power_w, now_price)
        margin_next = None if next_price is None else r.revenue - power_cost(r.power_w,
                                                                               next_price)
        out.append(CurtailRow(r.rig_id, r.name, r.model, r.status, r.revenue, r.power_w,
                              r.power_estimated, now_price, margin_now, next_price,
                              margin_next))
    out.sort(key=lambda c: (c.margin_now, c.name))
    return CurtailPlan(usd_kwh_now, usd_kwh_next, next_change_unix, tuple(out), next_label)
