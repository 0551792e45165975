"""The model catalog: the shipped table, matching what rigs really report, overrides, power."""

from __future__ import annotations

import csv
import math
from importlib import resources

import pytest

from tui.catalog import Catalog, ModelSpec, normalise, parse_csv, resolve_power
from tui.config import RigConfig

DESIGN_LIST = {
    "S9": (13.5, 1323),
    "S19": (95, 3250),
    "S19j Pro": (104, 3068),
    "S19 XP": (140, 3010),
    "S21": (200, 3500),
    "S21 Pro": (234, 3510),
    "S21 XP": (270, 3645),
    "S21 XP Hydro": (473, 5676),
    "M30S++": (112, 3472),
    "M50S": (126, 3276),
    "M60S": (186, 3441),
    "M66S": (298, 5513),
    "Avalon A1366": (130, 3250),
    "Bitaxe Gamma": (1.1, 18),
}


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return Catalog.load()


def test_shipped_file_is_a_package_resource_with_a_source_column() -> None:
    text = resources.files("tui.data").joinpath("models.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert list(rows[0]) == ["model", "hashrate_ths", "power_w", "source"]
    assert all(r["source"].strip() for r in rows)


def test_design_list_is_shipped(cat: Catalog) -> None:
    by_name = {s.model: s for s in cat}
    for model, (ths, w) in DESIGN_LIST.items():
        assert (by_name[model].hashrate_ths, by_name[model].power_w) == (ths, w), model
    assert by_name["S19j Pro"].j_per_th == pytest.approx(3068 / 104)  # 29.5 J/TH
    assert by_name["S21 XP"].j_per_th == pytest.approx(13.5)


@pytest.mark.parametrize(
    ("reported", "model"),
    [
        ("Antminer S19j Pro", "S19j Pro"),
        ("Antminer S19JPro", "S19j Pro"),
        ("S19j Pro", "S19j Pro"),
        ("antminer s19j pro", "S19j Pro"),
        ("Antminer S19j Pro (BOS+)", "S19j Pro"),
        ("Antminer S19j Pro (Vnish 1.2.6)", "S19j Pro"),
        ("  Antminer\tS19j-Pro  ", "S19j Pro"),
        ("Antminer S9", "S9"),
        ("Antminer S19", "S19"),
        ("Antminer S19 Pro", "S19 Pro"),
        ("Antminer S19 XP", "S19 XP"),
        ("Antminer S19XP", "S19 XP"),
        ("Antminer S21", "S21"),
        ("Antminer S21 Pro", "S21 Pro"),
        ("Antminer S21 XP", "S21 XP"),
        ("Antminer S21 XP Hyd.", "S21 XP Hydro"),
        ("Antminer S21 XP Hydro", "S21 XP Hydro"),
        ("S21XPHyd", "S21 XP Hydro"),
        ("WhatsMiner M30S++_V40", "M30S++"),
        ("M30S++_VH40", "M30S++"),
        ("M30S++V40", "M30S++"),
        ("M50S_VH50", "M50S"),
        ("M60S_VK30", "M60S"),
        ("MicroBT Whatsminer M66S_VL20", "M66S"),
        ("Avalon A1366", "Avalon A1366"),
        ("AvalonMiner 1366", "Avalon A1366"),
        ("Avalon Miner A1366", "Avalon A1366"),
        ("Canaan Avalon 1366", "Avalon A1366"),
        ("BM1370", "Bitaxe Gamma"),
        ("bm1370", "Bitaxe Gamma"),
        ("Bitaxe Gamma", "Bitaxe Gamma"),
        ("Bitaxe Gamma 601", "Bitaxe Gamma"),
        ("ＡＮＴＭＩＮＥＲ Ｓ２１", "S21"),  # full-width: NFKC folds it
        (")S21(", "S21"),  # punctuation is ignored
        ("S21 XP Hydra", "S21 XP Hydro"),
    ],
)
def test_lookup_real_reported_names(cat: Catalog, reported: str, model: str) -> None:
    spec = cat.lookup(reported)
    assert spec is not None, reported
    assert spec.model == model


@pytest.mark.parametrize(
    ("reported", "model"),
    [
        # the longest model wins: a longer name must never fall back to its prefix
        ("Antminer S19 XP", "S19 XP"),  # not S19
        ("Antminer S21 XP Hyd.", "S21 XP Hydro"),  # not S21 XP, not S21
        ("Antminer S21 Pro", "S21 Pro"),  # not S21
        # an unknown variant falls back to the longest whole-token prefix (a firmware tag)
        ("Antminer S19 XP (Vnish 1.2)", "S19 XP"),
        ("WhatsMiner M60SVK30", "M60S"),
        ("M50SVH50", "M50S"),
    ],
)
def test_longest_match(cat: Catalog, reported: str, model: str) -> None:
    spec = cat.lookup(reported)
    assert spec is not None and spec.model == model


@pytest.mark.parametrize(
    "reported", ["Antminer S21 Hyd.", "Antminer S21 XP+ Hyd.", "Antminer S19 XP Hydro",
                 "S21+", "S19 Pro+ Hyd."])
def test_other_machines_are_not_their_prefix(cat: Catalog, reported: str) -> None:
    # A hydro or "+" variant has another J/TH: no match beats a silently wrong estimate.
    assert cat.lookup(reported) is None


@pytest.mark.parametrize(
    "reported",
    [
        None,
        "",
        "   ",
        "Antminer",
        "WhatsMiner",
        "S19k",  # glued letter: a different model, never S19
        "S9i",
        "S199",
        "M30S+_V40",  # M30S+ is not M30S++
        "M30S",
        "M3",
        "S",
        "Antminer L7",
        "BM1397",
        "bitaxe",
        "\x1b[31mS19\x1b[0m j",  # escape codes: garbage in, no match, no crash
        "[bold red]pwned[/]",
        "S" * 100_000,
        "💥🔥",
        "\x00\x01\x02",
        "((((((((",
        "+++",
    ],
)
def test_garbage_and_unknown_names_return_none(cat: Catalog, reported: str | None) -> None:
    assert cat.lookup(reported) is None


@pytest.mark.parametrize("weird", [123, 1.5, b"S19", ["S19"], {"a": 1}, object()])
def test_non_strings_never_crash(cat: Catalog, weird: object) -> None:
    assert cat.lookup(weird) is None  # type: ignore[arg-type]


def test_normalise() -> None:
    assert normalise("Antminer S19j Pro") == "s19jpro"
    assert normalise("WhatsMiner M30S++_V40") == "m30s++"
    assert normalise("AvalonMiner 1366") == normalise("Avalon A1366") == "1366"
    assert normalise("Antminer S21 XP Hyd.") == "s21xphydro"
    assert normalise(None) == ""


def test_overrides_replace_and_add() -> None:
    cat = Catalog.load(
        {
            "Antminer S19j Pro": ModelSpec("Antminer S19j Pro", 100.0, 3050.0, "PDU"),
            "S23 Hyd": ModelSpec("S23 Hyd", 580.0, 5510.0, "config"),
        }
    )
    s19j = cat.lookup("Antminer S19JPro")
    assert s19j is not None
    assert (s19j.hashrate_ths, s19j.power_w, s19j.source) == (100.0, 3050.0, "PDU")
    assert len([s for s in cat if normalise(s.model) == "s19jpro"]) == 1
    s23 = cat.lookup("Antminer S23 Hydro")
    assert s23 is not None and s23.power_w == 5510.0
    # the shipped catalog itself is untouched
    assert Catalog.load().lookup("S19j Pro").power_w == 3068  # type: ignore[union-attr]


def test_get_is_exact() -> None:
    cat = Catalog.load()
    assert cat.get("Antminer S21 XP").model == "S21 XP"  # type: ignore[union-attr]
    assert cat.get("S21 Hydro") is None


def test_override_keyed_by_name_even_if_spec_model_differs() -> None:
    cat = Catalog.load({"S21": ModelSpec("whatever", 210.0, 3500.0, "config")})
    spec = cat.lookup("Antminer S21")
    assert spec is not None and spec.model == "S21" and spec.hashrate_ths == 210.0


def test_modelspec_validates() -> None:
    with pytest.raises(ValueError):
        ModelSpec("x", 0.0, 100.0)
    with pytest.raises(ValueError):
        ModelSpec("x", 100.0, math.nan)
    with pytest.raises(ValueError):
        ModelSpec("x", 100.0, -1.0)


def test_parse_csv_errors_name_the_line() -> None:
    with pytest.raises(ValueError, match="models.csv:3"):
        parse_csv("model,hashrate_ths,power_w,source\nS9,13.5,1323,x\nS19,abc,3250,x\n")
    with pytest.raises(ValueError, match="columns"):
        parse_csv("name,ths\nS9,13\n")
    # blank and commented rows are skipped
    assert [s.model for s in parse_csv("model,hashrate_ths,power_w,source\n#S9,1,1,x\n,,,\n")] == []


# --------------------------------------------------------------------------- spec_for_rig


def test_spec_for_rig_prefers_configured_model(cat: Catalog) -> None:
    rig = RigConfig("a-01", "10.0.0.1", model="S21 XP")
    assert cat.spec_for_rig(rig, "Antminer S19").model == "S21 XP"  # type: ignore[union-attr]
    assert cat.spec_for_rig(RigConfig("a", "h"), "Antminer S19").model == "S19"  # type: ignore[union-attr]
    assert cat.spec_for_rig(None, "Antminer S19").model == "S19"  # type: ignore[union-attr]
    # a configured model that doesn't match falls back to the reported one
    assert cat.spec_for_rig(RigConfig("a", "h", model="???"), "S9").model == "S9"  # type: ignore[union-attr]
    assert cat.spec_for_rig(None, None) is None


def test_spec_for_rig_applies_per_rig_figures(cat: Catalog) -> None:
    # hashrate only: keeps the model's 29.5 J/TH, so 90 TH/s -> 2655 W
    spec = cat.spec_for_rig(RigConfig("a", "h", model="S19j Pro", hashrate_ths=90.0), None)
    assert spec is not None
    assert spec.hashrate_ths == 90.0 and spec.power_w == pytest.approx(2655.0)
    assert spec.j_per_th == pytest.approx(29.5)
    # power only: 104 TH/s at 3200 W
    spec = cat.spec_for_rig(RigConfig("a", "h", model="S19j Pro", power_w=3200.0), None)
    assert spec is not None and (spec.hashrate_ths, spec.power_w) == (104.0, 3200.0)
    # both, for a model the catalog doesn't know
    spec = cat.spec_for_rig(RigConfig("a", "h", power_w=500.0, hashrate_ths=20.0), "Mystery X")
    assert spec is not None and spec.j_per_th == 25.0
    # one figure and an unknown model: not enough
    assert cat.spec_for_rig(RigConfig("a", "h", power_w=500.0), "Mystery X") is None


# --------------------------------------------------------------------------- resolve_power

S19J = ModelSpec("S19j Pro", 104.0, 3068.0, "test")  # 29.5 J/TH
PLAIN = RigConfig("a-01", "10.0.0.1")
WITH_POWER = RigConfig("a-02", "10.0.0.2", power_w=3100.0)


def test_reported_power_wins() -> None:
    assert resolve_power(3012.0, 100.0, WITH_POWER, S19J) == (3012.0, False)


def test_configured_power_is_not_an_estimate() -> None:
    assert resolve_power(None, 100.0, WITH_POWER, S19J) == (3100.0, False)


def test_nominal_j_per_th_times_live_hashrate_is_estimated() -> None:
    # 29.5 J/TH x 100 TH/s = 2950 W
    watts, estimated = resolve_power(None, 100.0, PLAIN, S19J)
    assert watts == pytest.approx(2950.0) and estimated is True
    assert resolve_power(None, 0.0, PLAIN, S19J) == (0.0, True)
    assert resolve_power(None, 100.0, None, S19J)[1] is True


def test_nothing_known() -> None:
    assert resolve_power(None, 100.0, PLAIN, None) == (None, False)
    assert resolve_power(None, None, PLAIN, S19J) == (None, False)


@pytest.mark.parametrize("garbage", [math.nan, math.inf, -5.0, 0.0, 1e9, True])
def test_implausible_reported_power_is_ignored(garbage: float) -> None:
    assert resolve_power(garbage, 100.0, WITH_POWER, S19J) == (3100.0, False)
    watts, est = resolve_power(garbage, 100.0, PLAIN, S19J)
    assert watts == pytest.approx(2950.0) and est is True


@pytest.mark.parametrize("garbage", [math.nan, math.inf, -1.0])
def test_garbage_hashrate_gives_no_estimate(garbage: float) -> None:
    assert resolve_power(None, garbage, PLAIN, S19J) == (None, False)
