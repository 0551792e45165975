"""The README's config reference lists exactly the keys the validator accepts (so it cannot
drift): every accepted key is documented under its table, and every documented key is
accepted."""

from __future__ import annotations

import re
from pathlib import Path

from tui import config
from tui.commands import COMMAND_IDS

README = Path(__file__).resolve().parents[1] / "README.md"


def _sections() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    ref = text[text.index("## Config reference"):]
    ref = ref[: ref.index("\n## ", 5)]
    out: dict[str, str] = {}
    for block in ref.split("\n### ")[1:]:
        head, _, body = block.partition("\n")
        name = re.search(r"`([^`]+)`", head)
        assert name, head
        out[name.group(1)] = body
    return out


def _documented(body: str) -> set[str]:
    """The keys in the first column of a section's table."""
    keys: set[str] = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            keys.update(re.findall(r"`([a-z_]+)`", first))
    return keys


def test_every_table_of_the_config_is_in_the_reference() -> None:
    s = _sections()
    tables = {"[site]", "[[site.tariff]]", "[site.power_feed]", "[poll]", "[[rigs]]",
              "[[scans]]", '[models."<name>"]', "[alerts]", "[[notify]]", "[ui]", "[keys]"}
    assert set(s) == tables
    # every top-level table the validator knows is one of them
    tops = {t.strip("[]").split(".")[0].split('"')[0] for t in tables}
    assert set(config._TOP_KEYS) == tops


def test_every_key_is_documented_and_every_documented_key_is_accepted() -> None:
    s = _sections()
    notify = set(config._NOTIFY_COMMON)
    for keys in config._NOTIFY_KEYS.values():
        notify.update(keys)
    expected = {
        "[site]": set(config._SITE_KEYS),
        "[[site.tariff]]": set(config._TARIFF_KEYS),
        "[site.power_feed]": set(config._POWER_FEED_KEYS),
        "[poll]": set(config._POLL_KEYS),
        "[[rigs]]": set(config._RIG_KEYS),
        "[[scans]]": set(config._SCAN_KEYS),
        '[models."<name>"]': set(config._MODEL_KEYS),
        "[alerts]": set(config._ALERT_KEYS),
        "[[notify]]": notify,
        "[ui]": set(config._UI_KEYS),
    }
    for table, keys in expected.items():
        assert _documented(s[table]) == keys, table


def test_the_keys_table_lists_every_command_id() -> None:
    body = _sections()["[keys]"]
    ids = set(re.findall(r"`([a-z_0-9]+)`", body.split("The ids:", 1)[1]))
    assert ids == set(COMMAND_IDS)


def test_documented_defaults_are_the_validators() -> None:
    d = config.PollConfig()
    rows = {k: line for line in _sections()["[poll]"].splitlines()
            if line.startswith("| `") for k in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    for key in config._POLL_KEYS:
        default = rows[key].split("|")[2].strip()
        assert float(default.replace(",", "")) == float(getattr(d, key)), key
    a = config.AlertRules()
    rows = {k: line for line in _sections()["[alerts]"].splitlines()
            if line.startswith("| `") for k in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    for key in ("rig_offline_s", "rig_stuck_s", "rig_temp_above_c",
                "rig_hashrate_below_nominal_pct", "drift_beyond_pct", "retarget_within_h",
                "hold_s", "rig_margin_below_usd_day"):
        assert float(rows[key].split("|")[2]) == float(getattr(a, key)), key
