"""The curtailment screen in a narrow terminal: the least needed columns go, every figure
left is shown in full (never cut to ``…``), the rig, its price and margin and the advice
stay; a resize lays the table out again.  Fed the demo's captured view."""

from __future__ import annotations

import dataclasses
import io
import re

from rich.console import Console
from textual.geometry import Region
from textual.widgets import Static

from tests.conftest import FakeClock
from tests.fake_engine import START, FakeEngine, demo_view
from tui.app import MinertopApp
from tui.curtail import CurtailPlan, plan
from tui.site import PowerNow, RigRow
from tui.spec import SourceSpec
from widgets.curtail import PAD, CurtailScreen, CurtailView, curtail_table

ALL_HEADERS = ("rig", "model", "rev $/d", "W", "$/kWh", "now $/d", "next $/d", "advice")
KEPT_AT_80 = ("rig", "$/kWh", "now $/d", "next $/d", "advice")


def _fed() -> MinertopApp:
    view = demo_view()
    assert view.site is not None
    power = PowerNow(usd_kwh=0.06, source="tariff", next_change_unix=START + 3600,
                     next_usd_kwh=0.19)
    view = dataclasses.replace(view, site=dataclasses.replace(view.site, power=power))
    spec = SourceSpec(kind="mempool", url="http://127.0.0.1:0", demo=True)
    return MinertopApp(spec, engine=FakeEngine([view]), clock=FakeClock(START))


def _body_lines(app: MinertopApp) -> list[str]:
    """The curtailment body as drawn: every line of the Static, at its size on screen."""
    body = app.screen.query_one("#curtail-body", Static)
    width, height = body.size
    return [strip.text.rstrip() for strip in body.render_lines(Region(0, 0, width, height))]


def _header(lines: list[str]) -> list[str]:
    """The table's header cells (split on runs of two or more spaces)."""
    line = next(ln for ln in lines if ln.split()[:1] == ["rig"])
    return [h for h in re.split(r" {2,}", line.strip()) if h]


def _row_line(lines: list[str], name: str) -> str:
    return next(ln for ln in lines if ln.split()[:1] == [name])


def _usd(v: float) -> str:
    return f"{v:+,.2f}".replace("-", "−")


def _assert_figures_in_full(lines: list[str], p: CurtailPlan, headers: list[str]) -> None:
    table = [ln for ln in lines if ln.split()[:1] == ["rig"]
             or any(ln.split()[:1] == [r.name] for r in p.rows)]
    assert len(table) == len(p.rows) + 1
    assert not any("…" in ln for ln in table), "\n".join(table)
    for r in p.rows:
        cells = _row_line(lines, r.name).split()
        assert _usd(r.margin_now) in cells
        if "$/kWh" in headers:
            assert f"{r.usd_kwh_now:.4f}" in cells
        if "next $/d" in headers:
            assert r.margin_next is not None and _usd(r.margin_next) in cells
        if "rev $/d" in headers:
            assert f"{r.revenue_usd_day:,.2f}" in cells
        if "W" in headers:
            assert f"{r.power_w:,.0f}{'~' if r.power_estimated else ''}" in cells
        if r.margin_now < 0:
            assert f"saves ${r.saving_now:,.2f}/d" in _row_line(lines, r.name)


async def test_at_80x24_the_curtailment_table_shows_every_figure_in_full() -> None:
    app = _fed()
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(200):
            if app.site_view is not None:
                break
            await pilot.pause(0.01)
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CurtailScreen)
        p = app._curtail_plan()
        assert p.losing_now and p.rows

        lines = _body_lines(app)
        headers = _header(lines)
        assert headers == list(KEPT_AT_80)  # revenue, watts and model went
        _assert_figures_in_full(lines, p, headers)
        assert any("not shown at this width: model, revenue, watts" in ln for ln in lines)

        # wide enough: every column is back; narrow again: they go again
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        lines = _body_lines(app)
        headers = _header(lines)
        assert headers == list(ALL_HEADERS)
        _assert_figures_in_full(lines, p, headers)
        assert not any("not shown" in ln for ln in lines)

        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert _header(_body_lines(app)) == list(KEPT_AT_80)


def _row(name: str, revenue: float, power_w: float, model: str = "S19j Pro") -> RigRow:
    return RigRow(rig_id=name, name=name, host="10.0.0.1", model=model, status="ok",
                  reason=None, hashrate_ths=100.0, power_w=power_w, power_estimated=False,
                  j_per_th=None, revenue=revenue, cost=None, margin=None, margin_after=None,
                  breakeven_kwh=None, shutdown_price=None, temp_max=None, age_s=1.0,
                  pool=None, economics=None, electricity_usd_kwh=0.06, own_price=False)


def _render(view: CurtailView, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(view)
    return console.export_text().splitlines()


def test_the_columns_dropped_follow_the_widths_not_a_guess() -> None:
    """All columns exactly when their widths (and padding) fit; one cell less drops the
    revenue first; then watts, model, the next price's margin and the price; the rig, its
    margin and the advice stay however narrow, with every figure in full."""
    rows = [_row("earns", 12_345.67, 3000, model="Avalon A1366"), _row("loses", 3.00, 3000)]
    p = plan(rows, usd_kwh_now=0.06, usd_kwh_next=0.19, next_change_unix=START + 7200)
    view = curtail_table(p, START)
    full = sum(c.width + PAD for c in view.columns)
    assert _header(_render(view, full)) == list(ALL_HEADERS)
    room = {c.key: c.width + PAD for c in view.columns}
    assert room["rev"] == len("12,345.67") + PAD  # measured, not the header's width
    w = full - 1
    expected = {w: ["rig", "model", "W", "$/kWh", "now $/d", "next $/d", "advice"]}
    w -= room["rev"]
    expected[w] = ["rig", "model", "$/kWh", "now $/d", "next $/d", "advice"]
    w -= room["watts"]
    expected[w] = ["rig", "$/kWh", "now $/d", "next $/d", "advice"]
    w -= room["model"]
    expected[w] = ["rig", "$/kWh", "now $/d", "advice"]
    w -= room["next"]
    expected[w] = ["rig", "now $/d", "advice"]
    assert _header(_render(view, w + 1)) == expected[w + room["next"]]
    for width, headers in expected.items():
        lines = _render(view, width)
        assert _header(lines) == headers, width
        _assert_figures_in_full(lines, p, headers)
    for width in range(30, full + 10):
        lines = _render(view, width)
        headers = _header(lines)
        assert {"rig", "now $/d", "advice"} <= set(headers)
        for r in p.rows:  # the margin in full, however narrow
            assert _usd(r.margin_now) in _row_line(lines, r.name).split()


def test_a_long_rig_name_is_cut_before_a_figure() -> None:
    name = "rack-07-row-12-shelf-3-x"
    p = plan([_row(name, 3.00, 3000)], usd_kwh_now=0.06, usd_kwh_next=None,
             next_change_unix=None)
    lines = _render(curtail_table(p, START), 44)
    row = next(ln for ln in lines if ln.lstrip().startswith("rack-"))
    assert "…" in row.split()[0] and "−1.32" in row.split()
