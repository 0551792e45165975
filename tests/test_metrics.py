"""``/metrics``: the exposition carries the view's own numbers, in base units, and passes
``promtool check metrics``."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_engine import demo_view
from tui.metrics import render


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(smp: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return smp[(name, tuple(sorted({"site": "Texas-A", **labels}.items())))]


def test_the_exposition_carries_the_views_numbers_in_base_units() -> None:
    view = demo_view()
    text = render(view, "Texas-A").decode()
    smp = samples(text)
    assert view.site is not None and view.dashboard is not None
    rows = {r.rig_id: r for r in view.site.rows}
    ok = next(r for r in view.site.rows if r.status == "ok" and r.margin is not None)
    assert get(smp, "minertop_rig_up", rig=ok.rig_id) == 1.0
    assert get(smp, "minertop_rig_hashrate_hashes_per_second",
               rig=ok.rig_id) == pytest.approx(ok.hashrate_ths * 1e12)  # type: ignore[operator]
    assert get(smp, "minertop_rig_margin_usd_per_day", rig=ok.rig_id) == pytest.approx(ok.margin)
    src = "estimated" if ok.power_estimated else "reported"
    assert get(smp, "minertop_rig_power_watts", rig=ok.rig_id, source=src) == ok.power_w
    # a rig that is down: up 0, no live numbers (absent, not 0)
    assert get(smp, "minertop_rig_up", rig="a-08") == 0.0
    assert ("minertop_rig_hashrate_hashes_per_second",
            (("rig", "a-08"), ("site", "Texas-A"))) not in smp
    info = get(smp, "minertop_rig_info", rig="a-08", host=rows["a-08"].address, model="?",
               firmware="", status="offline")
    assert info == 1.0
    # the site
    assert get(smp, "minertop_site_rigs", status="ok") == view.site.counts["ok"]
    assert get(smp, "minertop_site_rigs", status="offline") == 2
    assert get(smp, "minertop_site_hashrate_hashes_per_second") == pytest.approx(
        view.site.live_ths * 1e12)
    assert get(smp, "minertop_site_margin_usd_per_day") == pytest.approx(
        view.site.totals.margin_usd_day)
    # the network
    d = view.dashboard
    assert d.retarget is not None
    assert get(smp, "minertop_retarget_projected_change_ratio") == pytest.approx(
        d.retarget.projection.difficulty_change / 100)
    assert get(smp, "minertop_retarget_blocks_remaining") == 416
    assert get(smp, "minertop_network_hashrate_hashes_per_second", window="1d") == \
        pytest.approx(d.hashrate.windows["1d"])
    assert get(smp, "minertop_block_time_drift_ratio", window="epoch") == pytest.approx(
        d.drift.epoch_drift_pct / 100)  # type: ignore[operator]
    assert get(smp, "minertop_btc_price_usd") == 71_000
    # the daemon
    assert get(smp, "minertop_source_up", source="chain") == 1.0
    assert get(smp, "minertop_source_last_success_timestamp_seconds", source="rigs") == \
        view.sources["rigs"].fetched_at
    # every series has the site label
    assert all(dict(labels).get("site") == "Texas-A" for _, labels in smp)


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: install Debian's prometheus package (.ci/run does)"
    r = subprocess.run([promtool, "check", "metrics"], input=render(demo_view(), "Texas-A"),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


def test_a_view_without_data_still_renders_the_daemons_own_series() -> None:
    from dataclasses import replace

    view = replace(demo_view(), dashboard=None, site=None, chain=None, price=None)
    smp = samples(render(view, "x").decode())
    names = {n for n, _ in smp}
    assert "minertop_build_info" in names and "minertop_source_up" in names
    assert not any(n.startswith(("minertop_rig_", "minertop_network_")) for n in names)


def test_the_cycle_timestamp_is_the_last_completed_cycle_not_the_publish_time() -> None:
    from dataclasses import replace

    view = replace(demo_view(), time=2_000_000_000.0, cycle_time=1_769_000_000.0)
    smp = samples(render(view, "Texas-A").decode())
    assert get(smp, "minertop_cycle_timestamp_seconds") == 1_769_000_000.0
    none_yet = samples(render(replace(view, cycle_time=None), "Texas-A").decode())
    assert not any(n == "minertop_cycle_timestamp_seconds" for n, _ in none_yet)
