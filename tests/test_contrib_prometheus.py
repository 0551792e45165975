"""contrib/prometheus and contrib/grafana: the rules, their unit tests, the example config and
the dashboard.

``promtool`` (Debian's ``prometheus`` package; ``.ci/run`` installs it) is required: without
it these tests fail rather than skip, so a CI without it cannot pass silently.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROM = ROOT / "contrib" / "prometheus"
RULES = PROM / "minertop.rules.yml"
RULES_TEST = PROM / "minertop.rules.test.yml"
CONFIG = PROM / "prometheus.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "minertop.json"

#: What the daemon exports (tui/metrics.py).
EXPORTED = frozenset({
    "minertop_rig_up",
    "minertop_rig_hashrate_hashes_per_second",
    "minertop_rig_power_watts",
    "minertop_rig_temperature_celsius",
    "minertop_rig_revenue_usd_per_day",
    "minertop_rig_power_cost_usd_per_day",
    "minertop_rig_margin_usd_per_day",
    "minertop_rig_margin_after_retarget_usd_per_day",
    "minertop_rig_info",
    "minertop_site_rigs",
    "minertop_site_hashrate_hashes_per_second",
    "minertop_site_power_watts",
    "minertop_site_margin_usd_per_day",
    "minertop_site_margin_after_retarget_usd_per_day",
    "minertop_site_production_cost_usd_per_btc",
    "minertop_cycle_timestamp_seconds",
    "minertop_network_hashrate_hashes_per_second",
    "minertop_network_difficulty",
    "minertop_hashprice_usd_per_phs_day",
    "minertop_btc_price_usd",
    "minertop_retarget_blocks_remaining",
    "minertop_retarget_projected_change_ratio",
    "minertop_retarget_eta_timestamp_seconds",
    "minertop_block_time_drift_ratio",
    "minertop_build_info",
    "minertop_source_up",
    "minertop_source_last_success_timestamp_seconds",
    "minertop_poll_duration_seconds",
})

ALERTS = (
    "MinertopRigDown",
    "MinertopRigLosingMoney",
    "MinertopSiteHashrateDrop",
    "MinertopDaemonNotScraped",
    "MinertopDaemonStalled",
    "MinertopRetargetWithinDay",
    "MinertopSourceDown",
)

RECORDED_RE = re.compile(r"\b[a-z]+:minertop_[a-z_:]+")
METRIC_RE = re.compile(r"(?<![\w:])minertop_[a-z_]+\b")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not installed: these tests need it (Debian/Ubuntu: "
            "`apt-get install --no-install-recommends prometheus`; .ci/run installs it)",
            pytrace=False,
        )
    return path


def run_promtool(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        pytest.fail(f"promtool {' '.join(args)} failed ({proc.returncode}):\n{out}",
                    pytrace=False)
    return out


def recorded_names() -> set[str]:
    return set(re.findall(r"^\s*-\s*record:\s*(\S+)\s*$", RULES.read_text(), re.M))


def referenced(expr: str) -> set[str]:
    """The metric and recording-rule names an expression (or template) uses."""
    names = set(RECORDED_RE.findall(expr))
    names |= set(METRIC_RE.findall(RECORDED_RE.sub(" ", expr)))
    if re.search(r"(?<![\w:])up\s*[{(\s]", expr):
        names.add("up")
    return names


# ------------------------------------------------------------------ promtool


def test_promtool_check_rules() -> None:
    out = run_promtool("check", "rules", RULES.name, cwd=PROM)
    assert "SUCCESS" in out


def test_promtool_test_rules() -> None:
    out = run_promtool("test", "rules", RULES_TEST.name, cwd=PROM)
    assert "SUCCESS" in out


def test_promtool_check_config(tmp_path: Path) -> None:
    """The example config with its rule file next to it (the path is relative to the
    config's directory).  promtool insists the token files exist, so the check runs on a copy
    with placeholder tokens (no real token lives in the repository)."""
    shutil.copy(CONFIG, tmp_path / CONFIG.name)
    shutil.copy(RULES, tmp_path / RULES.name)
    for name in re.findall(r"credentials_file:\s*(\S+)", CONFIG.read_text()):
        assert not Path(name).is_absolute(), name
        (tmp_path / name).write_text("0123456789abcdef0123456789abcdef\n")
    out = run_promtool("check", "config", CONFIG.name, cwd=tmp_path)
    assert "1 rule files found" in out
    assert re.search(r"SUCCESS: \d+ rules found", out), out


# ------------------------------------------------------------------ the rules' contents


def test_rules_reference_only_exported_metrics() -> None:
    known = EXPORTED | recorded_names() | {"up"}
    unknown = referenced(RULES.read_text()) - known
    assert not unknown, f"minertop.rules.yml uses unknown metrics: {sorted(unknown)}"


def test_recording_rule_names_follow_the_convention() -> None:
    names = recorded_names()
    assert {"site:minertop_rig_up:sum", "fleet:minertop_site_hashrate_hashes_per_second:sum",
            "fleet:minertop_site_margin_usd_per_day:sum"} <= names
    for name in names:
        assert re.fullmatch(r"(site|fleet):minertop_[a-z_]+:[a-z_]+", name), name


def test_every_alert_is_defined_annotated_and_tested() -> None:
    text = RULES.read_text()
    tests = RULES_TEST.read_text()
    for alert in ALERTS:
        assert re.search(rf"^\s*- alert: {alert}\s*$", text, re.M), alert
        tested = re.findall(rf"alertname: {alert}\s*\n\s*eval_time: \S+\s*\n\s*exp_alerts:(.*)",
                            tests)
        assert "[]" in [t.strip() for t in tested], f"{alert}: no test where it does not fire"
        assert any(t.strip() == "" for t in tested), f"{alert}: no test where it fires"
    blocks = re.split(r"^\s*- alert: ", text, flags=re.M)[1:]
    assert len(blocks) >= len(ALERTS)
    for block in blocks:
        name = block.split()[0]
        for key in ("severity:", "summary:", "description:", "runbook_url:"):
            assert key in block, f"{name}: no {key}"
        anchor = re.search(r"README\.md#(\w+)", block)
        assert anchor and anchor.group(1) == name.lower(), name


def test_runbook_anchors_exist() -> None:
    headings = re.findall(r"^### (\w+)$", (PROM / "README.md").read_text(), re.M)
    assert {h.lower() for h in headings} >= {a.lower() for a in ALERTS}


def test_exported_names_match_the_exporter() -> None:
    """The names above are those tui/metrics.py exports (a rename there must reach here)."""
    source = (ROOT / "tui" / "metrics.py").read_text()
    missing = {name for name in EXPORTED if f'"{name}"' not in source}
    assert not missing, f"not exported by tui/metrics.py: {sorted(missing)}"


# ------------------------------------------------------------------ the dashboard


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def all_panels(doc: dict) -> list[dict]:
    out = []
    for p in doc["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))  # collapsed rows hold their panels
    return out


def test_dashboard_site_variable_and_datasource_input() -> None:
    doc = dashboard()
    assert 36 <= doc["schemaVersion"] <= 41
    assert any(i["name"] == "DS_PROMETHEUS" and i["pluginId"] == "prometheus"
               for i in doc["__inputs"])
    site = [v for v in doc["templating"]["list"] if v["name"] == "site"]
    assert len(site) == 1, "no `site` variable"
    v = site[0]
    query = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
    assert query == "label_values(minertop_build_info, site)"
    assert v["multi"] is True and v["includeAll"] is True
    ids = [p["id"] for p in all_panels(doc)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"


def test_dashboard_queries_use_known_metrics_and_site() -> None:
    doc = dashboard()
    known = EXPORTED | recorded_names() | {"up"}
    targets = [(p["title"], t) for p in all_panels(doc) for t in p.get("targets", [])]
    assert len(targets) > 20
    for title, t in targets:
        expr = t["expr"]
        used = referenced(expr)
        assert used, f"{title}: no metric in {expr!r}"
        unknown = used - known
        assert not unknown, f"{title}: unknown metrics {sorted(unknown)} in {expr!r}"
        assert t["datasource"]["uid"] == "${DS_PROMETHEUS}", title
        # Only the fleet roll-ups (every site) may ignore the site selection.
        if not all(name.startswith("fleet:") for name in used):
            assert '$site' in expr, f"{title}: {expr!r} ignores $site"
            assert len(re.findall(r'site=~"\$site"', expr)) == expr.count("{"), \
                f"{title}: a selector without site=~\"$site\" in {expr!r}"


def test_dashboard_has_the_four_areas() -> None:
    doc = dashboard()
    titles = [p["title"].lower() for p in all_panels(doc)]
    for words in (("sites overview",), ("rigs by margin",), ("hashrate", "power", "time"),
                  ("network", "retarget")):
        assert any(all(w in t for w in words) for t in titles), f"no panel titled {words}"
    types = {p["title"].lower(): p["type"] for p in all_panels(doc) if p["type"] != "row"}
    assert types["sites overview"] == "table"
    assert types["rigs by margin"] in ("table", "bargauge")
    assert "timeseries" in {types[t] for t in types if "hashrate" in t or "power" in t}
