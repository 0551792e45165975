"""The TOML site config: defaults, the shipped example, every error naming file:line: key."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tui.alerts import AlertRules
from tui.catalog import ModelSpec
from tui.config import (
    EXAMPLE_CONFIG,
    ConfigError,
    PollConfig,
    RigConfig,
    ScanRange,
    SiteConfig,
    default_config_path,
    load_config,
    parse_config,
    write_example_config,
)

SITE = '[site]\nname = "T"\nelectricity_usd_kwh = 0.06\n'


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def error(tmp_path: Path, text: str) -> ConfigError:
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    return ei.value


def one_error(tmp_path: Path, text: str) -> str:
    e = error(tmp_path, text)
    assert len(e.issues) == 1, str(e)
    return str(e)


def lineno(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing ``needle``."""
    hits = [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln]
    return hits[nth - 1]


# --------------------------------------------------------------------------- valid configs


def test_example_config_parses_into_the_expected_site_config(tmp_path: Path) -> None:
    p = write(tmp_path, EXAMPLE_CONFIG)
    cfg = load_config(p)
    assert cfg == SiteConfig(
        name="Texas-A",
        electricity_usd_kwh=0.06,
        pool_fee_pct=2.0,
        overhead_usd_day=0.0,
        rigs=(
            RigConfig("a-01", "10.0.1.11", None, "auto", "Antminer S19j Pro", 3150.0),
            RigConfig("b-07", "10.0.1.57", 4433, "whatsminer-v3", electricity_usd_kwh=0.055),
            RigConfig("garage-bitaxe", "192.168.1.50", 80, "bitaxe"),
        ),
        scans=(ScanRange("10.0.2.0/24", None, "auto"),),
        models={"S19j Pro": ModelSpec("S19j Pro", 100.0, 3050.0, "our PDU readings, Jan 2026")},
        poll=PollConfig(10.0, 3.0, 256, 1, 600.0),
        path=p,
        extra={},
    )
    assert {r.kind for r in cfg.rigs} == {"auto", "whatsminer-v3", "bitaxe"}


def test_example_config_is_commented() -> None:
    comments = [ln for ln in EXAMPLE_CONFIG.splitlines() if ln.lstrip().startswith("#")]
    assert len(comments) >= 10
    for key in ("electricity_usd_kwh", "pool_fee_pct", "[[rigs]]", "[[scans]]", "[models."):
        assert key in EXAMPLE_CONFIG


def test_minimal_config_gets_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[site]\nelectricity_usd_kwh = 0.05\n"))
    assert cfg is not None
    assert cfg.name == "site"
    assert cfg.electricity_usd_kwh == 0.05
    assert cfg.pool_fee_pct == 0.0 and cfg.overhead_usd_day == 0.0
    assert cfg.rigs == () and cfg.scans == () and cfg.models == {} and cfg.extra == {}
    assert cfg.poll == PollConfig(interval_s=10.0, timeout_s=3.0, concurrency=256, retries=1)


def test_rig_defaults_and_per_rig_overrides(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            SITE
            + "overhead_usd_day = 0.25\n"
            + '[[rigs]]\nhost = "10.0.0.1"\n'
            + '[[rigs]]\nhost = "10.0.0.2"\nport = 4029\n'
            + '[[rigs]]\nhost = "bitaxe-1.lan"\nkind = "bitaxe"\n'
            + '[[rigs]]\nname = "x"\nhost = "10.0.0.3"\nelectricity_usd_kwh = 0.1\n'
            + "overhead_usd_day = 1\nhashrate_ths = 90\npower_w = 2900\nmodel = 'S19j Pro'\n",
        )
    )
    assert cfg is not None
    a, b, c, d = cfg.rigs
    # no name: the host (plus the port when it isn't the kind's default)
    assert (a.name, a.port, a.kind) == ("10.0.0.1", None, "auto")  # identified when polled
    assert (b.name, b.port) == ("10.0.0.2:4029", 4029)
    assert (c.name, c.port, c.kind) == ("bitaxe-1.lan", 80, "bitaxe")
    assert d == RigConfig("x", "10.0.0.3", None, "auto", "S19j Pro", 2900.0, 0.1, 1.0, 90.0)
    assert cfg.electricity_for(a) == 0.06 and cfg.electricity_for(d) == 0.1
    assert cfg.overhead_for(a) == 0.25 and cfg.overhead_for(d) == 1.0
    assert cfg.electricity_for(None) == 0.06


def test_partial_model_override_fills_from_the_shipped_catalog(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            SITE
            + '[models."S19j Pro"]\npower_w = 2900\n'
            + '[models."S23 Hyd"]\nhashrate_ths = 580\npower_w = 5510\nsource = "MFR"\n'
            + '[[rigs]]\nhost = "10.0.0.9"\nmodel = "Antminer S23 Hyd."\n',
        )
    )
    assert cfg is not None
    assert cfg.models["S19j Pro"] == ModelSpec("S19j Pro", 104.0, 2900.0, "config")
    assert cfg.models["S23 Hyd"] == ModelSpec("S23 Hyd", 580.0, 5510.0, "MFR")
    cat = cfg.catalog()
    assert cat.lookup("Antminer S19j Pro").power_w == 2900.0  # type: ignore[union-attr]
    assert cat.lookup("Antminer S23 Hydro").hashrate_ths == 580.0  # type: ignore[union-attr]


def test_keys_table_is_kept_and_validated_and_alerts_is_validated(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, SITE + '[alerts]\nrig_temp_above_c = 80\n[keys]\nquit = "x, ctrl+q"\n')
    )
    assert cfg is not None
    assert cfg.extra == {"keys": {"quit": "x, ctrl+q"}}
    assert cfg.alerts == AlertRules(rig_temp_above_c=80.0)
    with pytest.raises(ConfigError, match=r"config.toml:\d+: keys.more: unknown command"):
        load_config(write(tmp_path, SITE + '[keys]\nquit = "q"\n[keys.more]\nx = 1\n'))


def test_ipv6_hosts_and_scan_ranges(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            SITE + '[[rigs]]\nhost = "fd00::10"\n[[scans]]\ncidr = "fd00::/112"\n'
            '[[scans]]\ncidr = "10.1.0.0/16"\nkind = "bitaxe"\n[[scans]]\ncidr = "10.9.9.9/32"\n',
        )
    )
    assert cfg is not None
    assert cfg.rigs[0].host == "fd00::10"
    assert cfg.scans == (
        ScanRange("fd00::/112", None, "auto"),
        ScanRange("10.1.0.0/16", 80, "bitaxe"),
        ScanRange("10.9.9.9/32", None, "auto"),
    )
    assert cfg.scans[1].network.num_addresses == 65536


def test_crlf_and_bom(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_bytes(
        b"\xef\xbb\xbf" + (SITE + '[[rigs]]\nhost = "10.0.0.1"\n').encode().replace(b"\n", b"\r\n")
    )
    cfg = load_config(p)
    assert cfg is not None and cfg.rigs[0].host == "10.0.0.1"
    p.write_bytes(
        (SITE + '[[rigs]]\nhost = "10.0.0.1"\nport = 0\n').encode().replace(b"\n", b"\r\n")
    )
    with pytest.raises(ConfigError, match=r"c\.toml:6: rigs\[0\]\.port: "):
        load_config(p)


# --------------------------------------------------------------------------- locations & paths


def test_default_path_follows_xdg(tmp_path: Path) -> None:
    assert default_config_path({"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}) == Path(
        "/xdg/minertop/config.toml"
    )
    assert default_config_path({"HOME": "/home/u"}) == Path("/home/u/.config/minertop/config.toml")
    # empty or relative XDG_CONFIG_HOME is ignored (XDG base directory spec)
    for xdg in ("", "relative/dir"):
        assert default_config_path({"XDG_CONFIG_HOME": xdg, "HOME": "/home/u"}) == Path(
            "/home/u/.config/minertop/config.toml"
        )


def test_missing_default_file_is_none_but_missing_explicit_file_is_an_error(
    tmp_path: Path,
) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)}
    assert load_config(environ=env) is None
    with pytest.raises(ConfigError, match="nope.toml: no such file"):
        load_config(tmp_path / "nope.toml", environ=env)
    default = tmp_path / "xdg" / "minertop" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text(SITE)
    cfg = load_config(environ=env)
    assert cfg is not None and cfg.path == default and cfg.name == "T"


def test_error_names_the_file_with_tilde_under_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    p = tmp_path / ".config" / "minertop" / "config.toml"
    p.parent.mkdir(parents=True)
    text = SITE + '[[rigs]]\nhost = "10.0.0.1"\n[[rigs]]\nhost = "10.0.0.2"\n'
    text += '[[rigs]]\nhost = "10.0.0.3"\nport = "abc"\n'
    p.write_text(text)
    with pytest.raises(ConfigError) as ei:
        load_config(environ=env)
    assert str(ei.value) == (
        f"~/.config/minertop/config.toml:{lineno(text, 'abc')}: rigs[2].port: "
        'expected an integer 1–65535, got "abc"'
    )
    assert ei.value.line == lineno(text, "abc") and ei.value.key == "rigs[2].port"


def test_directory_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    p = tmp_path / "c.toml"
    p.write_bytes(SITE.encode() + b'[[rigs]]\nhost = "\xff"\n')
    with pytest.raises(ConfigError, match=r"c\.toml:5: not valid UTF-8"):
        load_config(p)


# --------------------------------------------------------------------------- syntax errors


def test_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    msg = one_error(tmp_path, '[site]\nname = "unterminated\nelectricity_usd_kwh = 0.06\n')
    assert re.match(r".*config\.toml:2:\d+: TOML syntax error: ", msg), msg


def test_syntax_error_at_end_of_document(tmp_path: Path) -> None:
    msg = one_error(tmp_path, "[site]\nelectricity_usd_kwh = [1,\n")
    assert re.match(r".*config\.toml:3:1: TOML syntax error: ", msg), msg


def test_duplicate_table_is_a_syntax_error(tmp_path: Path) -> None:
    msg = one_error(tmp_path, SITE + "[site]\npool_fee_pct = 1\n")
    assert re.match(r".*config\.toml:4:\d+: TOML syntax error: ", msg), msg


# --------------------------------------------------------------------------- value errors


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        (
            "electricity_usd_kwh = 11",
            "site.electricity_usd_kwh",
            "expected a number 0–10 ($/kWh), got 11",
        ),
        ("electricity_usd_kwh = -0.01", "site.electricity_usd_kwh", "got -0.01"),
        (
            'electricity_usd_kwh = "0.06"',
            "site.electricity_usd_kwh",
            'expected a number 0–10 ($/kWh), got "0.06"',
        ),
        ("electricity_usd_kwh = nan", "site.electricity_usd_kwh", "got nan"),
        ("electricity_usd_kwh = true", "site.electricity_usd_kwh", "got true"),
        ("pool_fee_pct = 101", "site.pool_fee_pct", "expected a number 0–100 (%), got 101"),
        ("overhead_usd_day = -1", "site.overhead_usd_day", "got -1"),
        ("name = 5", "site.name", "expected a non-empty string, got 5"),
        ('name = ""', "site.name", 'expected a non-empty string, got ""'),
        (
            "electricity_usd_kw = 0.06",
            "site.electricity_usd_kw",
            'unknown key (did you mean "electricity_usd_kwh"?)',
        ),
    ],
)
def test_site_value_errors(tmp_path: Path, body: str, key: str, expected: str) -> None:
    base = "electricity_usd_kwh = 0.06\n" if not body.startswith("electricity_usd_kwh =") else ""
    text = f"# my site\n[site]\n{base}{body}\n"
    e = error(tmp_path, text)
    line = lineno(text, body)
    assert any(
        str(i).startswith(f"{e.path}:{line}: {key}: ") and expected in str(i) for i in e.issues
    ), str(e)


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ("interval_s = 0", "poll.interval_s", "expected a number >0 and ≤3600 (s), got 0"),
        ("interval_s = -5", "poll.interval_s", "got -5"),
        ("timeout_s = 0", "poll.timeout_s", "got 0"),
        ("concurrency = 0", "poll.concurrency", "expected an integer 1–10000, got 0"),
        ("concurrency = 10001", "poll.concurrency", "got 10001"),
        ("concurrency = 2.5", "poll.concurrency", "got 2.5"),
        ("retries = -1", "poll.retries", "expected an integer 0–10, got -1"),
        ("interval = 5", "poll.interval", 'unknown key (did you mean "interval_s"?)'),
    ],
)
def test_poll_value_errors(tmp_path: Path, body: str, key: str, expected: str) -> None:
    text = SITE + f"\n[poll]\n{body}\n"
    msg = one_error(tmp_path, text)
    assert f":{lineno(text, body)}: {key}: " in msg and expected in msg, msg


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ("port = 0", "port", "expected an integer 1–65535, got 0"),
        ("port = 65536", "port", "got 65536"),
        ('port = "4028"', "port", 'got "4028"'),
        ('kind = "antminer"', "kind",
         'expected one of "auto", "cgminer", "whatsminer-v3", "bitaxe", got "antminer"'),
        ("power_w = 0", "power_w", "expected a number >0 and ≤100000 (W), got 0"),
        ("power_w = 100001", "power_w", "got 100001"),
        ("electricity_usd_kwh = 12", "electricity_usd_kwh", "got 12"),
        ("hashrate_ths = -1", "hashrate_ths", "got -1"),
        ("overhead_usd_day = -2", "overhead_usd_day", "got -2"),
        ("model = 7", "model", "expected a non-empty string, got 7"),
        ('model = "S19jx"', "model", 'unknown model "S19jx"'),
        ('model = "S19\\u001b[31m"', "model", "printable characters"),
        ("hots = 'x'", "hots", 'unknown key (did you mean "host"?)'),
    ],
)
def test_rig_value_errors(tmp_path: Path, body: str, key: str, expected: str) -> None:
    text = SITE + '[[rigs]]\nname = "a-01"\nhost = "10.0.0.1"\n\n[[rigs]]\n'
    text += f'name = "a-02"\nhost = "10.0.0.2"\n# note\n{body}\n'
    e = error(tmp_path, text)
    want = f"{e.path}:{lineno(text, body)}: rigs[1].{key}: "
    assert any(str(i).startswith(want) and expected in str(i) for i in e.issues), str(e)


@pytest.mark.parametrize(
    "host",
    [
        "http://10.0.0.1",
        "10.0.0.1:4028",
        "10.0.0.1/24",
        "10.0.0.256",
        "[::1]:4028",
        "my rig",
        "-bad.example",
        "a..b",
        "x" * 64 + ".example",
    ],
)
def test_bad_hosts(tmp_path: Path, host: str) -> None:
    text = SITE + f'[[rigs]]\nname = "r"\nhost = "{host}"\n'
    msg = one_error(tmp_path, text)
    assert f":{lineno(text, 'host =')}: rigs[0].host: expected an IP address or host name" in msg
    if "://" in host:
        assert "no URL" in msg
    if host.endswith(":4028"):
        assert "port key" in msg


def test_missing_site_and_missing_required_keys(tmp_path: Path) -> None:
    msg = one_error(tmp_path, '[[rigs]]\nhost = "10.0.0.1"\n')
    assert msg.endswith(": site: missing (required)")
    text = '# site\n\n[site]\nname = "x"\n[[rigs]]\nname = "a"\n'
    e = error(tmp_path, text)
    s = str(e)
    # a missing key is reported at its table's header line
    assert "config.toml:3: site.electricity_usd_kwh: missing (required)" in s
    assert "config.toml:5: rigs[0].host: missing (required)" in s


def test_unknown_top_level_table_and_wrong_shapes(tmp_path: Path) -> None:
    text = SITE + "[alert]\nx = 1\n"
    msg = one_error(tmp_path, text)
    assert ':4: alert: unknown key (did you mean "alerts"?)' in msg
    msg = one_error(tmp_path, SITE + '[rigs]\nhost = "10.0.0.1"\n')
    assert ":4: rigs: expected an array of tables ([[rigs]] sections), got a table" in msg
    msg = one_error(tmp_path, 'site = "x"\n')
    assert ':1: site: expected a table, got "x"' in msg
    msg = one_error(tmp_path, "rigs = [1]\n" + SITE)
    assert "rigs[0]: expected a table ([[rigs]]), got 1" in msg


def test_duplicate_rig_names_and_addresses(tmp_path: Path) -> None:
    text = SITE + (
        '[[rigs]]\nname = "a"\nhost = "Rig-1.lan"\n'
        '[[rigs]]\nname = "b"\nhost = "10.0.0.1"\n'
        '[[rigs]]\nname = "a"\nhost = "10.0.0.2"\n'
        '[[rigs]]\nname = "d"\nhost = "rig-1.lan."\n'  # same host: case and root dot ignored
        '[[rigs]]\nname = "e"\nhost = "10.0.0.1"\nport = 4029\n'  # other port: fine
        '[[rigs]]\nname = "f"\nhost = "10.0.0.3"\nkind = "bitaxe"\n'
        '[[rigs]]\nname = "g"\nhost = "10.0.0.3"\n'  # 4028 vs bitaxe's 80: fine
    )
    e = error(tmp_path, text)
    assert len(e.issues) == 2, str(e)
    name_a = 'name = "a"'
    assert str(e.issues[0]) == (
        f'{e.path}:{lineno(text, name_a, 2)}: rigs[2].name: duplicate rig name "a" '
        f"(also at line {lineno(text, name_a)})"
    )
    assert str(e.issues[1]) == (
        f"{e.path}:{lineno(text, 'rig-1.lan.')}: rigs[3].host: duplicate rig address "
        f"rig-1.lan. (also at line {lineno(text, 'Rig-1.lan')})"
    )


def test_default_names_can_collide(tmp_path: Path) -> None:
    text = SITE + '[[rigs]]\nhost = "10.0.0.1"\n[[rigs]]\nname = "10.0.0.1"\nhost = "10.0.0.2"\n'
    msg = one_error(tmp_path, text)
    assert 'rigs[1].name: duplicate rig name "10.0.0.1" (also at line 4)' in msg


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("10.0.0.0/8", "expected a range of at most 65,536 addresses (a /16)"),
        ("10.0.0.0/15", "at most 65,536"),
        ("fd00::/64", "at most 65,536"),
        ("10.0.1.5/24", 'host bits clear (did you mean "10.0.1.0/24"?)'),
        ("10.0.1/24", 'expected a CIDR range like "10.0.2.0/24", got "10.0.1/24"'),
        ("banana", 'got "banana"'),
    ],
)
def test_scan_range_errors(tmp_path: Path, cidr: str, expected: str) -> None:
    text = SITE + f'[[scans]]\nport = 4028\ncidr = "{cidr}"\n'
    msg = one_error(tmp_path, text)
    assert f":{lineno(text, 'cidr')}: scans[0].cidr: " in msg and expected in msg, msg


def test_scan_range_other_errors(tmp_path: Path) -> None:
    text = SITE + '[[scans]]\ncidr = "10.0.0.0/24"\n[[scans]]\ncidr = "10.0.0.0/24"\n'
    msg = one_error(tmp_path, text)
    assert ":7: scans[1].cidr: duplicate scan range 10.0.0.0/24 (also at line 5)" in msg
    msg = one_error(tmp_path, SITE + "[[scans]]\ncidr = 10\n")
    assert "scans[0].cidr: expected a CIDR range" in msg
    msg = one_error(tmp_path, SITE + '[[scans]]\ncidr = "10.0.0.0/24"\nkind = "x"\n')
    assert ":6: scans[0].kind: expected one of" in msg
    msg = one_error(tmp_path, SITE + "[[scans]]\nport = 1\n")
    assert ":4: scans[0].cidr: missing (required)" in msg


def test_model_override_errors(tmp_path: Path) -> None:
    text = SITE + '[models."S99"]\npower_w = 3000\n'
    msg = one_error(tmp_path, text)
    assert ':4: models.S99.hashrate_ths: missing; "S99" is not in the shipped catalog' in msg
    text = SITE + "[models.S21]\nhashrate_ths = 0\npowr_w = 1\n"
    e = error(tmp_path, text)
    s = str(e)
    assert ":5: models.S21.hashrate_ths: expected a number >0" in s
    assert ':6: models.S21.powr_w: unknown key (did you mean "power_w"?)' in s
    msg = one_error(tmp_path, SITE + '[models]\n"S 21" = 5\n')
    assert ':5: models."S 21": expected a table, got 5' in msg


def test_partial_override_needs_an_exact_shipped_model(tmp_path: Path) -> None:
    # "S21 Hydro" would prefix-match S21 in a lookup, but an override doesn't borrow from it
    msg = one_error(tmp_path, SITE + '[models."S21 Hydro"]\npower_w = 5360\n')
    assert ':4: models."S21 Hydro".hashrate_ths: missing;' in msg


def test_other_errors_do_not_hide_model_overrides(tmp_path: Path) -> None:
    # the site error must not make the override vanish and the rig's model look unknown
    text = (
        "[site]\nelectricity_usd_kwh = 99\n"
        '[models."S23"]\nhashrate_ths = 500\npower_w = 5000\n'
        '[[rigs]]\nhost = "10.0.0.1"\nmodel = "S23"\n'
    )
    e = error(tmp_path, text)
    assert [i.key for i in e.issues] == ["site.electricity_usd_kwh"]


def test_unknown_rig_model_is_fine_when_the_rig_has_its_own_figures(tmp_path: Path) -> None:
    text = SITE + '[[rigs]]\nhost = "10.0.0.1"\nmodel = "S23"\npower_w = 5000\nhashrate_ths = 500\n'
    cfg = load_config(write(tmp_path, text))
    assert cfg is not None and cfg.rigs[0].model == "S23"
    spec = cfg.catalog().spec_for_rig(cfg.rigs[0], None)
    assert spec is not None and spec.j_per_th == 10.0


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    text = '[site]\nelectricity_usd_kwh = 20\npool_fee_pct = -1\n[[rigs]]\nhost = "x y"\nport = 0\n'
    e = error(tmp_path, text)
    assert [(i.line, i.key) for i in e.issues] == [
        (2, "site.electricity_usd_kwh"),
        (3, "site.pool_fee_pct"),
        (5, "rigs[0].host"),
        (6, "rigs[0].port"),
    ]
    assert len(str(e).splitlines()) == 4


def test_many_problems_are_capped(tmp_path: Path) -> None:
    text = SITE + "".join(f'[[rigs]]\nhost = "10.0.0.{i}"\nport = 0\n' for i in range(30))
    e = error(tmp_path, text)
    assert len(e.issues) == 21 and str(e).endswith("... and 10 more problems")


# --------------------------------------------------------------------------- locating keys


def test_locating_keys_survives_comments_strings_and_other_syntax(tmp_path: Path) -> None:
    text = """\
# [[rigs]] in a comment must not count
[site]
'name' = "x"  # [[rigs]]
electricity_usd_kwh = 0.06

[models."S9"]
source = \"\"\"
[[rigs]]
port = "fake"
\"\"\"
[models."S19"]
source = '''
[[rigs]]
'''

[[ rigs ]]
name = "a"
host = "10.0.0.1"

[[rigs]]  # the second one
name = "b"
  "host" = "10.0.0.2"
"port" = 99999
"""
    # The multi-line sources are errors of their own; the rig's line must still be right.
    with pytest.raises(ConfigError) as ei:
        load_config(write(tmp_path, text))
    msg = str(ei.value)
    assert f":{lineno(text, '99999')}: rigs[1].port: " in msg, msg


def test_locating_keys_in_inline_tables_and_dotted_keys(tmp_path: Path) -> None:
    text = (
        'site = { name = "x", electricity_usd_kwh = 0.06 }\n'
        "rigs = [\n"
        '  { name = "a", host = "10.0.0.1" },\n'
        '  { name = "b", host = "10.0.0.2", port = -1 },\n'
        "]\n"
    )
    msg = one_error(tmp_path, text)
    assert ":4: rigs[1].port: expected an integer 1–65535, got -1" in msg, msg
    text = "site.name = 'x'\nsite.electricity_usd_kwh = 99\n"
    msg = one_error(tmp_path, text)
    assert ":2: site.electricity_usd_kwh: " in msg, msg
    text = '[site]\nname = "x"\nelectricity_usd_kwh = 0.06\npoll = { interval_s = 0 }\n'
    msg = one_error(tmp_path, text)
    assert ":4: site.poll: unknown key" in msg, msg


def test_nested_tables_under_array_of_tables(tmp_path: Path) -> None:
    # [rigs.x] belongs to the last [[rigs]]: reported as an unknown key of that rig
    text = SITE + '[[rigs]]\nhost = "10.0.0.1"\n[[rigs]]\nhost = "10.0.0.2"\n[rigs.extra]\nk = 1\n'
    msg = one_error(tmp_path, text)
    assert ":8: rigs[1].extra: unknown key" in msg, msg


def test_parse_config_from_text_without_a_file() -> None:
    cfg = parse_config(SITE)
    assert cfg.path is None and cfg.name == "T"
    with pytest.raises(ConfigError, match=r"^<config>:3: site\.electricity_usd_kwh: "):
        parse_config('[site]\nname = "T"\nelectricity_usd_kwh = "cheap"\n')


# --------------------------------------------------------------------------- init-config


def test_write_example_config_creates_parents_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "minertop" / "config.toml"
    assert write_example_config(target) == target
    assert target.read_text(encoding="utf-8") == EXAMPLE_CONFIG
    assert load_config(target) is not None
    target.write_text("# mine\n")
    with pytest.raises(FileExistsError, match="already exists"):
        write_example_config(target)
    assert target.read_text() == "# mine\n"
    write_example_config(target, force=True)
    assert target.read_text(encoding="utf-8") == EXAMPLE_CONFIG
    assert not [p for p in target.parent.iterdir() if p.name != "config.toml"]


def test_example_config_written_to_the_xdg_default(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path / "home")}
    path = write_example_config(default_config_path(env))
    cfg = load_config(environ=env)
    assert cfg is not None and cfg.path == path and os.path.isfile(path)


# --------------------------------------------------------------------------- [alerts]


def test_alerts_default_without_a_table_and_in_the_example(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SITE))
    assert cfg is not None and cfg.alerts == AlertRules()
    assert cfg.alerts.rig_offline_s == 300 and cfg.alerts.log_file is None
    example = load_config(write(tmp_path, EXAMPLE_CONFIG, "example.toml"))
    assert example is not None and example.alerts == AlertRules()
    # the example shows every key (log_file commented out: its default is "none")
    section = EXAMPLE_CONFIG.split("[alerts]", 1)[1].split("\n\n", 1)[0]
    for key in (
        "enabled",
        "rig_offline_s",
        "rig_margin_below_usd_day",
        "rig_temp_above_c",
        "rig_hashrate_below_nominal_pct",
        "drift_beyond_pct",
        "retarget_within_h",
        "bell",
        "# log_file",
    ):
        assert re.search(rf"^{re.escape(key)}\s*=", section, re.M), key


def test_alerts_values_false_turns_a_rule_off_and_log_file_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    text = SITE + (
        "[alerts]\n"
        "enabled = false\n"
        "rig_offline_s = 0\n"
        "rig_margin_below_usd_day = -2.5\n"
        "rig_temp_above_c = false\n"
        "rig_hashrate_below_nominal_pct = 15\n"
        "drift_beyond_pct = 7.5\n"
        "retarget_within_h = false\n"
        "bell = true\n"
        'log_file = "~/logs/alerts.log"\n'
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg is not None
    assert cfg.alerts == AlertRules(
        enabled=False,
        rig_offline_s=0.0,
        rig_margin_below_usd_day=-2.5,
        rig_temp_above_c=None,
        rig_hashrate_below_nominal_pct=15.0,
        drift_beyond_pct=7.5,
        retarget_within_h=None,
        bell=True,
        log_file=tmp_path / "home" / "logs" / "alerts.log",
    )
    # a relative log file lives next to the config file; false means no log file
    sub = tmp_path / "etc"
    sub.mkdir()
    cfg = load_config(write(sub, SITE + '[alerts]\nlog_file = "alerts.log"\n'))
    assert cfg is not None and cfg.alerts.log_file == sub / "alerts.log"
    cfg = load_config(write(sub, SITE + "[alerts]\nlog_file = false\n"))
    assert cfg is not None and cfg.alerts.log_file is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "rig_temp_above_c = 200",
            "alerts.rig_temp_above_c: expected a number >0 and ≤150 (°C) "
            "or false to turn it off, got 200",
        ),
        (
            "rig_temp_above_c = true",
            "alerts.rig_temp_above_c: expected a number >0 and ≤150 (°C) "
            "or false to turn it off, got true",
        ),
        (
            'rig_offline_s = "5m"',
            "alerts.rig_offline_s: expected a number 0–604800 (s) "
            'or false to turn it off, got "5m"',
        ),
        ("rig_offline_s = -1", "alerts.rig_offline_s: expected a number 0–604800"),
        (
            "rig_hashrate_below_nominal_pct = 0",
            "alerts.rig_hashrate_below_nominal_pct: expected a number >0 and ≤99 (% under nominal)",
        ),
        ("rig_hashrate_below_nominal_pct = 100", "alerts.rig_hashrate_below_nominal_pct: "),
        ("drift_beyond_pct = nan", "alerts.drift_beyond_pct: expected a number >0 and ≤1000"),
        (
            "retarget_within_h = 0",
            "alerts.retarget_within_h: expected a number >0 and ≤720 (hours)",
        ),
        (
            "rig_margin_below_usd_day = [1]",
            "alerts.rig_margin_below_usd_day: expected a number "
            "-10000–10000 ($/day) or false to turn it off, got an array",
        ),
        ('bell = "yes"', 'alerts.bell: expected true or false, got "yes"'),
        ("bell = 1", "alerts.bell: expected true or false, got 1"),
        (
            "log_file = 3",
            'alerts.log_file: expected a file path like "~/minertop-alerts.log" or false, got 3',
        ),
        ('log_file = ""', "alerts.log_file: expected a file path"),
        ("log_file = true", "alerts.log_file: expected a file path"),
        (
            "rig_temp_above = 80",
            "alerts.rig_temp_above: unknown key (did you mean "
            '"rig_temp_above_c"?); expected one of: enabled, rig_offline_s,',
        ),
        ("sms = 1", "alerts.sms: unknown key; expected one of: enabled,"),
    ],
)
def test_alerts_errors_name_the_line_and_key(tmp_path: Path, line: str, expected: str) -> None:
    text = SITE + "[alerts]\nenabled = true\n" + line + "\n"
    msg = one_error(tmp_path, text)
    assert f"config.toml:{lineno(text, line)}: {expected}" in msg, msg


def test_alerts_errors_shapes_directories_and_several_at_once(tmp_path: Path) -> None:
    msg = one_error(tmp_path, "alerts = 3\n" + SITE)
    assert "config.toml:1: alerts: expected a table, got 3" in msg, msg
    (tmp_path / "logs").mkdir()
    text = SITE + f'[alerts]\nlog_file = "{tmp_path / "logs"}"\n'
    msg = one_error(tmp_path, text)
    assert "config.toml:5: alerts.log_file: expected a file path" in msg, msg
    assert "which is a directory" in msg, msg
    text = SITE + "[alerts]\nrig_temp_above_c = -1\nbell = 2\n[alerts.webhook]\nurl = 'x'\n"
    e = error(tmp_path, text)
    assert [(i.line, i.key) for i in e.issues] == [
        (5, "alerts.rig_temp_above_c"),
        (6, "alerts.bell"),
        (7, "alerts.webhook"),
    ], str(e)


def test_ui_theme_is_checked(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SITE + '[ui]\ntheme = "nord"\n'))
    assert cfg is not None and cfg.theme == "nord"
    text = SITE + '[ui]\ntheme = "Nord\\u001b[31m"\n'
    msg = one_error(tmp_path, text)
    assert f":{lineno(text, 'theme')}: ui.theme: expected a theme name" in msg, msg
    msg = one_error(tmp_path, SITE + '[ui]\ntheme = "nord"\ncolour = 1\n')
    assert "ui.colour: unknown key" in msg, msg
