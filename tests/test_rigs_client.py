"""The rig clients: cgminer reply parsing, figures per firmware, the poller, fleet status.

Replies below have the shapes real firmware sends (bmminer, btminer, BOSminer, Canaan
cgminer, ESP-Miner), defects included.  Network tests use fake rigs on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from tui.model import RigReading
from tui.sim.http import HttpServer, Request, Response
from tui.sources import cgminer
from tui.sources.bitaxe import parse_info, read_bitaxe
from tui.sources.cgminer import (
    CgminerError,
    RigError,
    RigProfile,
    parse_reply,
    read_cgminer,
    reading_from_sections,
    split_multi,
)
from tui.sources.rigs import (
    RigFleet,
    RigPoller,
    RigTarget,
)

# ----------------------------------------------------------------------------- samples

ANT_SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":11,"Msg":"Summary",'
    b'"Description":"cgminer 4.11.1"}],"SUMMARY":[{"Elapsed":86400,"GHS 5s":"104213.55",'
    b'"GHS av":103987.10,"GHS 30m":104001.22,"Found Blocks":0,"Accepted":10800,'
    b'"Rejected":12,"Hardware Errors":7,"Device Hardware%":0.0001,"Pool Rejected%":0.11,'
    b'"Best Share":1234567890}],"id":1}\x00'
)
# bmminer glues the two STATS objects ("}{"): the canonical defect
ANT_STATS = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":70,"Msg":"CGMiner stats",'
    b'"Description":"cgminer 4.11.1"}],"STATS":[{"BMMiner":"1.0.0","Miner":"uart_trans.1.3",'
    b'"CompileTime":"Thu Aug 8 15:43:34 CST 2024","Type":"Antminer S19j Pro"}'
    b'{"STATS":0,"ID":"BC50","Elapsed":86400,"GHS 5s":"104213.55","GHS av":103987.10,'
    b'"miner_count":3,"fan_num":4,"fan1":3480,"fan2":3540,"fan3":3600,"fan4":3510,'
    b'"fan5":0,"fan_pwm":40,"temp_num":3,"temp1":54,"temp2":56,"temp3":55,"temp2_1":68,'
    b'"temp2_2":71,"temp2_3":0,"temp_pcb1":"51-49-54-53","temp_chip1":"56-54-68-67",'
    b'"temp_chip2":"58-55-71-70","temp_chip3":"57-55-70-69","temp_max":71,'
    b'"chain_rate1":"34700.12","chain_rate2":"34811.40","chain_rate3":"34702.03"}],'
    b'"id":1}\x00'
)
# bmminer's stray "[,{" in pools, and a raw newline between objects
ANT_POOLS = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":7,"Msg":"3 Pool(s)",'
    b'"Description":"cgminer 4.11.1"}],"POOLS":[,{"POOL":0,"URL":"stratum+tcp://btc.f2pool.com:1314",'
    b'"Status":"Alive","Priority":0,"Stratum Active":true,"User":"site.a01"},\n'
    b'{"POOL":1,"URL":"stratum+tcp://ss.antpool.com:3333","Status":"Alive","Priority":1,'
    b'"Stratum Active":false},{"POOL":2,"URL":"","Status":"Dead","Priority":2}],"id":1}\x00'
)
# btminer: trailing ",}", a raw newline inside a string, MH/s figures, Power in summary
WM_SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","Msg":"Summary","Description":"btminer\n"}],'
    b'"SUMMARY":[{"Elapsed":2648,"MHS av":84983730.62,"MHS 5s":102423869.64,'
    b'"MHS 1m":86361423.06,"MHS 5m":84941366.02,"Accepted":804,"Rejected":0,'
    b'"Temperature":80.00,"freq_avg":646,"Fan Speed In":4530,"Fan Speed Out":4560,'
    b'"Power":3593,"Power Rate":42.31,"Uptime":20507,"Env Temp":32.00,'
    b'"Power Mode":"Normal","Factory GHS":84773,"Power Limit":3600,"Chip Temp Min":75.17,'
    b'"Chip Temp Max":101.25,"Chip Temp Avg":89.60,"Btminer Fast Boot":"disable",}],'
    b'"id":1}'
)
WM_DEVDETAILS = (
    b'{"STATUS":[{"STATUS":"S","Msg":"Device Details","Description":"btminer"}],'
    b'"DEVDETAILS":[{"DEVDETAILS":0,"Name":"SM","ID":0,"Driver":"bitmicro","Kernel":"",'
    b'"Model":"M30S++V40"},{"DEVDETAILS":1,"Name":"SM","ID":1,"Driver":"bitmicro",'
    b'"Kernel":"","Model":"M30S++V40"}],"id":1}'
)
WM_ERROR = b'{"STATUS":"E","When":1769000000,"Code":14,"Msg":"invalid cmd","Description":""}'
BOS_SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","When":1595938492,"Code":11,"Msg":"Summary",'
    b'"Description":"BOSminer+ 0.2.0-ea64aec8e"}],"SUMMARY":[{"Accepted":11200,'
    b'"Elapsed":7200,"MHS 15m":13210000.1,"MHS 1m":13402000.5,"MHS 5m":13300000.0,'
    b'"MHS 5s":13512345.678,"MHS av":13250000.0,"Rejected":3}],"id":1}'
)
BOS_TUNER = (
    b'{"STATUS":[{"STATUS":"S","Code":203,"Msg":"Tuner Status",'
    b'"Description":"BOSminer+ 0.2.0-ea64aec8e"}],"TUNERSTATUS":[{'
    b'"ApproximateChainPowerConsumption":1344,"ApproximateMinerPowerConsumption":1419,'
    b'"DynamicPowerScaling":"Disabled","PowerLimit":1420,"TunerChainStatus":[]}],"id":1}'
)
BOS_TEMPS = (
    b'{"STATUS":[{"STATUS":"S","Code":201,"Msg":"3 Temp(s)","Description":"BOSminer+"}],'
    b'"TEMPS":[{"Board":81.875,"Chip":104.625,"ID":6,"TEMP":0},{"Board":85.875,'
    b'"Chip":108.9375,"ID":7,"TEMP":1},{"Board":84.4375,"Chip":105.4375,"ID":8,"TEMP":2}],'
    b'"id":1}'
)
BOS_FANS = (
    b'{"STATUS":[{"STATUS":"S","Code":202,"Msg":"4 Fan(s)","Description":"BOSminer+"}],'
    b'"FANS":[{"FAN":0,"ID":0,"RPM":5340,"Speed":100},{"FAN":1,"ID":1,"RPM":4620,'
    b'"Speed":100},{"FAN":2,"ID":2,"RPM":0,"Speed":100},{"FAN":3,"ID":3,"RPM":0,'
    b'"Speed":100}],"id":1}'
)
BOS_DEVDETAILS = (
    b'{"STATUS":[{"STATUS":"S","Code":69,"Msg":"Device Details","Description":"BOSminer+"}],'
    b'"DEVDETAILS":[{"Chips":63,"DEVDETAILS":0,"ID":6,"Model":"Bitmain Antminer S9",'
    b'"Name":"Hash Chain 6"}],"id":1}'
)
# Canaan cgminer: "inf"/"nan" quoted and bare, no 5 s figure, the MM ID0 blob
AVA_SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":11,"Msg":"Summary",'
    b'"Description":"cgminer 4.11.1"}],"SUMMARY":[{"Elapsed":563833,"MHS av":126800000.00,'
    b'"MHS 30s":131700000.00,"MHS 1m":131500000.00,"MHS 15m":"inf",'
    b'"Device Hardware%":"nan","Work Utility":inf,"Accepted":7311}],"id":1}\x00'
)
AVA_STATS = (
    b'{"STATUS":[{"STATUS":"S","When":1769000000,"Code":70,"Msg":"CGMiner stats",'
    b'"Description":"cgminer 4.11.1"}],"STATS":[{"STATS":0,"ID":"AVA100","Elapsed":563833,'
    b'"MM ID0":"Ver[1366-24031401_4ec6bb0] DNA[0201000033ac7e5b] Elapsed[563833] '
    b"Temp[25] TMax[79] TAvg[72] Fan1[3768] Fan2[3689] Fan3[3639] Fan4[3744] FanR[59%] "
    b"PS[0 1215 2046 62 1269 2046 3213] WALLPOWER[3213] GHSspd[131700.00] "
    b'GHSmm[133000.00] GHSavg[126800.00] MTmax[79 77 78] MTavg[72 71 72]","MM Count":1},'
    b'{"STATS":1,"ID":"POOL0","Elapsed":563833}],"id":1}\x00'
)
AVA_VERSION = (
    b'{"STATUS":[{"STATUS":"S","Code":22,"Msg":"CGMiner versions","Description":"cgminer 4.11.1"}],'
    b'"VERSION":[{"CGMiner":"4.11.1","API":"3.7","PROD":"AvalonMiner 1366","MODEL":"1366"}],'
    b'"id":1}\x00'
)
BITAXE_INFO = {
    "power": 17.78,
    "voltage": 5120.0,
    "temp": 57.25,
    "vrTemp": 62,
    "hashRate": 1104.52,
    "bestDiff": "4.29G",
    "hostname": "bitaxe-garage",
    "uptimeSeconds": 1772842,
    "ASICModel": "BM1370",
    "stratumURL": "public-pool.io",
    "stratumPort": 21496,
    "stratumUser": "bc1qexample.bitaxe",
    "version": "v2.4.2",
    "boardVersion": "601",
    "fanspeed": 48,
    "fanrpm": 4150,
}


def sections_of(**raw: bytes) -> dict[str, dict]:
    return {cmd: parse_reply(body) for cmd, body in raw.items()}


def read(sections: dict[str, dict]) -> RigReading:
    return reading_from_sections(sections, rig_id="r", host="127.0.0.1", port=4028, time=1.0)


# ----------------------------------------------------------------------------- parse_reply


def test_parse_clean_reply_and_nul() -> None:
    r = parse_reply(ANT_SUMMARY)
    assert r["SUMMARY"][0]["GHS 5s"] == "104213.55"
    assert parse_reply(ANT_SUMMARY.rstrip(b"\x00")) == r  # the NUL is optional
    assert parse_reply(ANT_SUMMARY + b"\x00\r\n") == r


def test_parse_glued_objects() -> None:
    stats = parse_reply(ANT_STATS)["STATS"]
    assert len(stats) == 2
    assert stats[0]["Type"] == "Antminer S19j Pro"
    assert stats[1]["GHS 5s"] == "104213.55"


def test_parse_stray_leading_comma_and_newline_between_objects() -> None:
    pools = parse_reply(ANT_POOLS)["POOLS"]
    assert [p["POOL"] for p in pools] == [0, 1, 2]


def test_parse_trailing_comma_and_raw_newline_in_string() -> None:
    r = parse_reply(WM_SUMMARY)
    assert r["STATUS"][0]["Description"] == "btminer\n"  # kept as data
    assert r["SUMMARY"][0]["Btminer Fast Boot"] == "disable"
    assert parse_reply(b'{"STATUS":[{"STATUS":"S"},],"X":[1,2,],"id":1,}')["X"] == [1, 2]


@pytest.mark.parametrize(
    "body",
    [
        b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"a":"Normal""b":1}],"id":1}',  # btminer 2023
        b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"a":"Normal" "b":1}],"id":1}',
        b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"a":"Normal",,"b":1}],"id":1}',
    ],
)
def test_parse_missing_or_doubled_comma(body: bytes) -> None:
    assert parse_reply(body)["SUMMARY"][0] == {"a": "Normal", "b": 1}


def test_parse_non_finite_numbers() -> None:
    r = parse_reply(
        b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"a":inf,"b":-inf,"c":nan,"d":NaN,'
        b'"e":Infinity,"f":-nan,"g":"inf","h":"nan","i":1.5}],"id":1}'
    )
    s = r["SUMMARY"][0]
    assert [s[k] for k in "abcdef"] == [None] * 6
    assert (s["g"], s["h"], s["i"]) == ("inf", "nan", 1.5)


def test_parse_json_nan_literals_are_not_figures() -> None:
    r = parse_reply(b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"MHS 5s":NaN,"MHS av":5e6}]}')
    reading = read({"summary": r})
    assert reading.hashrate_ths == pytest.approx(5.0)  # NaN live skipped, falls back to av


def test_parse_control_chars_and_invalid_utf8_are_kept_as_data() -> None:
    r = parse_reply(
        b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"User":"w\x01\x1b[2J","Name":"caf\xff\xfe"}]}'
    )
    s = r["SUMMARY"][0]
    assert s["User"] == "w\x01\x1b[2J"
    assert s["Name"] == "caf\ufffd\ufffd"


def test_parse_string_contents_are_never_rewritten() -> None:
    # tokens that the repair rewrites outside strings must survive inside them
    body = b'{"STATUS":[{"STATUS":"S","Msg":"a}{b [,{ ,} inf nan"}],"SUMMARY":[{"x":1}{"y":2}]}'
    r = parse_reply(body)
    assert r["STATUS"][0]["Msg"] == "a}{b [,{ ,} inf nan"
    assert r["SUMMARY"] == [{"x": 1}, {"y": 2}]


def test_parse_ignores_trailing_data_after_the_reply() -> None:
    r = parse_reply(b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"x":1}{"y":2}]}\x00junk}{')
    assert r["SUMMARY"] == [{"x": 1}, {"y": 2}]


@pytest.mark.parametrize("body", [ANT_STATS, WM_SUMMARY, AVA_STATS, ANT_POOLS])
def test_every_cut_short_reply_is_truncated(body: bytes) -> None:
    core = body.rstrip(b"\x00")
    for cut in range(1, len(core) - 1):
        with pytest.raises(CgminerError, match="truncated reply") as e:
            parse_reply(core[:cut])
        assert e.value.kind == "reply"
        assert str(e.value).startswith("bad reply: ")


@pytest.mark.parametrize(
    "body",
    [
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        b"\x15\x03\x01\x00\x02\x02\x50",
        b"<html><body>Login required</body></html>",
        b"STATUS=S,When=1,Code=11,Msg=Summary,Description=cgminer 4.9.0|SUMMARY,Elapsed=1|",
        b"[1,2,3]",
        b'{"hello":"world"}',
        b"\xff\xfe\xfd",
    ],
)
def test_garbage_is_not_a_cgminer_reply(body: bytes) -> None:
    with pytest.raises(CgminerError, match="not a cgminer reply"):
        parse_reply(body)


@pytest.mark.parametrize("body", [b"", b"\x00", b" \r\n\x00"])
def test_empty_reply(body: bytes) -> None:
    with pytest.raises(CgminerError, match="empty reply"):
        parse_reply(body)


def test_unbalanced_brackets_are_malformed() -> None:
    with pytest.raises(CgminerError, match="malformed"):
        parse_reply(b'{"summary":[{"STATUS":[{"STATUS":"S"}]}]],"stats":[{}]}')


def test_multi_command_reply_sections() -> None:
    body = (
        b'{"summary":['
        + ANT_SUMMARY.rstrip(b"\x00")
        + b'],"stats":['
        + ANT_STATS.rstrip(b"\x00")
        + b'],"id":1}\x00'
    )
    reply = parse_reply(body)
    sections = split_multi(reply, ["summary", "stats", "pools"])
    assert sections is not None and set(sections) == {"summary", "stats"}
    assert split_multi(parse_reply(ANT_SUMMARY), ["summary", "stats"]) is None


# ----------------------------------------------------------------------------- status


@pytest.mark.parametrize("code", ["S", "I"])
def test_success_status_codes(code: str) -> None:
    body = ANT_SUMMARY.replace(b'"STATUS":"S"', f'"STATUS":"{code}"'.encode())
    assert read({"summary": parse_reply(body)}).ok


@pytest.mark.parametrize("code", ["W", "E", "F"])
def test_error_status_codes(code: str) -> None:
    body = (
        f'{{"STATUS":[{{"STATUS":"{code}","When":1,"Code":45,'
        f'"Msg":"Access denied to \'summary\' command","Description":"cgminer 4.11.1"}}],'
        f'"id":1}}'
    ).encode()
    with pytest.raises(CgminerError, match="rig reports error: Access denied") as e:
        read({"summary": parse_reply(body)})
    assert e.value.kind == "status"


def test_btminer_top_level_error_status() -> None:
    with pytest.raises(CgminerError, match="rig reports error: invalid cmd"):
        read({"summary": parse_reply(WM_ERROR)})


# ----------------------------------------------------------------------------- figures


def test_antminer_figures() -> None:
    r = read(sections_of(summary=ANT_SUMMARY, stats=ANT_STATS, pools=ANT_POOLS))
    assert r.ok and r.firmware == "antminer"
    assert r.model == "Antminer S19j Pro"
    assert r.hashrate_ths == pytest.approx(104.21355)  # "GHS 5s" string, GH/s -> TH/s
    assert r.hashrate_avg_ths == pytest.approx(103.9871)
    assert r.power_w is None  # stock Antminer reports no power
    assert r.temps_c == (68.0, 71.0, 70.0)  # hottest chip per board; temp2_3=0 ignored
    assert r.fans_rpm == (3480, 3540, 3600, 3510)  # fan5=0 (no fan) dropped
    assert r.pool == "stratum+tcp://btc.f2pool.com:1314"
    assert r.uptime_s == 86400


def test_antminer_s9_slots_and_bmminer_only_stats() -> None:
    stats = (
        b'{"STATUS":[{"STATUS":"S","Description":"bmminer 1.0.0"}],"STATS":[{"BMMiner":"1.0.0",'
        b'"Type":"Antminer S9"}{"STATS":0,"Elapsed":500,"GHS 5s":"13512.2","GHS av":13498.77,'
        b'"fan3":5880,"fan6":5820,"temp6":55,"temp7":57,"temp8":54,"temp2_6":72,'
        b'"temp2_7":75,"temp2_8":0}],"id":1}\x00'
    )
    summary = b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":500,"GHS av":13498.77}]}'
    r = read(sections_of(summary=summary, stats=stats))
    assert r.hashrate_ths == pytest.approx(13.5122)  # no live figure in summary: stats'
    assert r.hashrate_avg_ths == pytest.approx(13.49877)
    assert r.temps_c == (72.0, 75.0, 54.0)  # slot 8: no chip temp -> PCB temp
    assert r.fans_rpm == (5880, 5820)
    assert r.model == "Antminer S9"


def test_whatsminer_figures() -> None:
    r = read(sections_of(summary=WM_SUMMARY, devdetails=WM_DEVDETAILS))
    assert r.firmware == "whatsminer"
    assert r.model == "M30S++V40"
    assert r.hashrate_ths == pytest.approx(102.42386964)  # MH/s -> TH/s
    assert r.hashrate_avg_ths == pytest.approx(84.98373062)
    assert r.power_w == 3593
    assert r.temps_c == (80.0, 101.25)
    assert r.fans_rpm == (4530, 4560)
    assert r.uptime_s == 2648


def test_braiins_figures() -> None:
    r = read(
        sections_of(
            summary=BOS_SUMMARY,
            tunerstatus=BOS_TUNER,
            temps=BOS_TEMPS,
            fans=BOS_FANS,
            devdetails=BOS_DEVDETAILS,
        )
    )
    assert r.firmware == "braiins"
    assert r.model == "Bitmain Antminer S9"
    assert r.hashrate_ths == pytest.approx(13.512345678)
    assert r.power_w == 1419  # the tuner's estimate
    assert r.temps_c == (104.625, 108.9375, 105.4375)
    assert r.fans_rpm == (5340, 4620)


def test_avalon_figures() -> None:
    r = read(sections_of(summary=AVA_SUMMARY, stats=AVA_STATS, version=AVA_VERSION))
    assert r.firmware == "avalon"
    assert r.model == "AvalonMiner 1366"
    assert r.hashrate_ths == pytest.approx(131.7)  # "MHS 30s": Avalon has no 5 s figure
    assert r.hashrate_avg_ths == pytest.approx(126.8)
    assert r.power_w == 3213
    assert r.temps_c == (79.0, 77.0, 78.0)
    assert r.fans_rpm == (3768, 3689, 3639, 3744)


def test_vnish_chain_consumption_and_ths_keys() -> None:
    stats = (
        b'{"STATUS":[{"STATUS":"S"}],"STATS":[{"Type":"Antminer S19 XP (Vnish 1.2.0-rc1)"},'
        b'{"STATS":0,"GHS 5s":"140258.58","chain_consumption1":1001,"chain_consumption2":999,'
        b'"chain_consumption3":1000}],"id":1}'
    )
    summary = b'{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"THS 5s":140.2,"THS av":141.0}]}'
    r = read(sections_of(summary=summary, stats=stats))
    assert r.firmware == "vnish"
    assert r.power_w == 3000
    assert r.hashrate_ths == pytest.approx(140.2)
    assert r.hashrate_avg_ths == pytest.approx(141.0)


@pytest.mark.parametrize(
    ("fields", "live", "avg"),
    [
        ({"MHS 5s": 1_000_000, "MHS av": 2_000_000}, 1.0, 2.0),
        ({"GHS 5s": "1500.5", "GHS av": 1400}, 1.5005, 1.4),
        ({"MHS 1m": 3e6, "MHS av": 3.1e6}, 3.0, 3.1),
        ({"GHS 5s": "0.00", "GHS av": 0}, 0.0, 0.0),  # a rig that hashes nothing: 0, not None
        ({"GHS 5s": " 12.5 ", "MHS av": "nan"}, 0.0125, None),
    ],
)
def test_hashrate_units(fields: dict, live: float, avg: float | None) -> None:
    summary = {"STATUS": [{"STATUS": "S"}], "SUMMARY": [fields]}
    r = read({"summary": summary})
    assert r.hashrate_ths == pytest.approx(live)
    assert r.hashrate_avg_ths == (pytest.approx(avg) if avg is not None else None)


def test_no_hashrate_is_a_bad_reply() -> None:
    with pytest.raises(CgminerError, match="no hashrate"):
        read({"summary": {"STATUS": [{"STATUS": "S"}], "SUMMARY": [{"Elapsed": 5}]}})


def test_untrusted_text_passes_through_unchanged() -> None:
    # Rich markup and terminal escapes are data here: the UI must escape them, not us
    evil = "[bold red]x[/]\x1b[2J"
    stats = (
        b'{"STATUS":[{"STATUS":"S"}],"STATS":[{"Type":"' + evil.encode() + b'"},{"GHS 5s":"1000"}]}'
    )
    pools = (
        b'{"STATUS":[{"STATUS":"S"}],"POOLS":[{"URL":"stratum+tcp://[link=x]p[/link]\x07:1",'
        b'"Stratum Active":true}]}'
    )
    r = read(sections_of(summary=ANT_SUMMARY, stats=stats, pools=pools))
    assert r.model == evil
    assert r.pool == "stratum+tcp://[link=x]p[/link]\x07:1"


def test_reported_model_names_match_the_catalog() -> None:
    # What the firmware flavours really report, through the lookup production uses.
    from tui.catalog import Catalog

    cat = Catalog.load()
    for reported, model in [
        ("Antminer S19j Pro", "S19j Pro"), ("Bitmain Antminer S9", "S9"),
        ("Antminer S19 XP (Vnish 1.2.0-rc1)", "S19 XP"), ("M30S++V40", "M30S++"),
        ("M60SVK30", "M60S"), ("AvalonMiner 1366", "Avalon A1366"),
        ("Bitaxe Gamma", "Bitaxe Gamma"), ("Antminer S21 XP", "S21 XP"),
    ]:
        spec = cat.lookup(reported)
        assert spec is not None and spec.model == model, reported
    assert cat.lookup("Antminer L7") is None and cat.lookup(None) is None


# ----------------------------------------------------------------------------- Bitaxe


def test_bitaxe_info_to_reading() -> None:
    r = parse_info(BITAXE_INFO, rig_id="b", host="127.0.0.1", port=80, time=5.0)
    assert r.ok and r.firmware == "bitaxe"
    assert r.model == "Bitaxe Gamma"
    assert r.hashrate_ths == pytest.approx(1.10452)  # GH/s -> TH/s
    assert r.power_w == pytest.approx(17.78)
    assert r.temps_c == (57.25,)
    assert r.fans_rpm == (4150,)
    assert r.hostname == "bitaxe-garage"
    assert r.uptime_s == 1772842
    assert r.pool == "stratum+tcp://public-pool.io:21496"


def test_bitaxe_unknown_chip_and_bad_info() -> None:
    r = parse_info({**BITAXE_INFO, "ASICModel": "BM9999"}, rig_id="b", host="h", port=1, time=0)
    assert r.model == "Bitaxe BM9999"
    with pytest.raises(RigError, match="no hashRate"):
        parse_info({"power": 1}, rig_id="b", host="h", port=1, time=0)
    with pytest.raises(RigError, match="bad reply"):
        parse_info([1, 2], rig_id="b", host="h", port=1, time=0)


# ----------------------------------------------------------------------------- fake rigs

Handler = Callable[[str, int], "bytes | None"]


class FakeRig:
    """A cgminer-API rig on 127.0.0.1: ``handler(command, n)`` returns the reply bytes,
    or None to hang.  Counts requests and the most connections open at once."""

    def __init__(self, handler: Handler, *, delay: float = 0.0, shared: dict | None = None):
        self.handler = handler
        self.delay = delay
        self.requests: list[str] = []
        self.shared = shared if shared is not None else {"active": 0, "peak": 0}
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> FakeRig:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for w in list(self._writers):
            w.transport.abort()

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        self.shared["active"] += 1
        self.shared["peak"] = max(self.shared["peak"], self.shared["active"])
        try:
            data = b""
            while not data.rstrip().endswith(b"}"):
                chunk = await reader.read(4096)
                if not chunk:
                    break
                data += chunk
            command = json.loads(data)["command"]
            self.requests.append(command)
            if self.delay:
                await asyncio.sleep(self.delay)
            reply = self.handler(command, len(self.requests))
            if reply is None:
                await asyncio.sleep(3600)
            writer.write(reply)
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError, ValueError):
            pass
        finally:
            self.shared["active"] -= 1
            self._writers.discard(writer)
            writer.close()


def by_command(replies: dict[str, bytes], multi: bytes | None = None) -> Handler:
    def handler(command: str, n: int) -> bytes:
        if "+" in command:
            if multi is not None:
                return multi
            parts = [
                f'"{c}":[{replies[c].rstrip(bytes(1)).decode()}]'
                for c in command.split("+")
                if c in replies
            ]
            return ("{" + ",".join(parts) + ',"id":1}').encode() + b"\x00"
        return replies.get(command, WM_ERROR)

    return handler


@pytest.fixture
async def rigs() -> AsyncIterator[list[FakeRig]]:
    made: list[FakeRig] = []
    yield made
    for r in made:
        await r.stop()


async def fake(rigs: list[FakeRig], handler: Handler, **kw) -> FakeRig:
    rig = await FakeRig(handler, **kw).start()
    rigs.append(rig)
    return rig


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ANT = {"summary": ANT_SUMMARY, "stats": ANT_STATS, "pools": ANT_POOLS}
#: what a poller asks a rig it does not know yet (one connection)
FIRST = "summary+stats+pools+devdetails+version"


async def test_read_cgminer_one_multi_command_connection(rigs) -> None:
    rig = await fake(rigs, by_command(ANT))
    r = await read_cgminer("127.0.0.1", rig.port, timeout=2, rig_id="a-01", clock=lambda: 7.0)
    assert (r.rig_id, r.time, r.model, r.firmware) == ("a-01", 7.0, "Antminer S19j Pro", "antminer")
    assert r.pool == "stratum+tcp://btc.f2pool.com:1314"
    assert rig.requests == [FIRST]
    # once known as an Antminer: only what it needs
    profile = RigProfile()
    await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
    await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
    assert rig.requests[1:] == [FIRST, "summary+stats+pools"]


@pytest.mark.parametrize(
    "multi",
    [
        b'{"summary":[{"STATUS":[{"STATUS":"S"}]}]],"stats":[{}],"id":1}\x00',  # unbalanced
        ANT_SUMMARY[:40],  # cut short
        b"\x15\x03\x01\x00\x02\x02\x50",  # garbage
        WM_ERROR,  # multi-command refused (btminer style)
        b'{"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command"}],"id":1}\x00',
    ],
)
async def test_multi_command_falls_back_to_one_command_per_connection(rigs, multi) -> None:
    rig = await fake(rigs, by_command(ANT, multi=multi))
    profile = RigProfile()
    r = await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
    assert r.ok and r.model == "Antminer S19j Pro" and r.pool is not None
    assert rig.requests == [FIRST, *FIRST.split("+")]
    assert profile.multi is False
    # next poll goes straight to single commands
    await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
    assert rig.requests[6:] == ["summary", "stats", "pools"]


async def test_first_contact_learns_the_firmware(rigs) -> None:
    replies = {
        "summary": BOS_SUMMARY,
        "tunerstatus": BOS_TUNER,
        "temps": BOS_TEMPS,
        "fans": BOS_FANS,
        "devdetails": BOS_DEVDETAILS,
        "pools": ANT_POOLS,
    }
    rig = await fake(rigs, by_command(replies))
    profile = RigProfile()
    r = await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
    assert (r.firmware, r.model, r.power_w) == ("braiins", "Bitmain Antminer S9", 1419)
    assert profile.firmware == "braiins"
    assert rig.requests == [FIRST, "tunerstatus+temps+fans+devs"]
    await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
    assert rig.requests[2:] == ["summary+devdetails+tunerstatus+temps+fans+pools+devs"]


async def test_whatsminer_first_contact(rigs) -> None:
    rig = await fake(rigs, by_command({"summary": WM_SUMMARY, "devdetails": WM_DEVDETAILS}))
    r = await read_cgminer("127.0.0.1", rig.port, timeout=2)
    assert (r.firmware, r.model, r.power_w) == ("whatsminer", "M30S++V40", 3593)


async def test_hanging_rig_times_out_within_the_deadline(rigs) -> None:
    rig = await fake(rigs, lambda c, n: None)
    t0 = time.monotonic()
    with pytest.raises(RigError, match=r"^timed out after 0.3 s$") as e:
        await read_cgminer("127.0.0.1", rig.port, timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 1.0
    assert e.value.kind == "timeout" and e.value.offline


async def test_refused_connection() -> None:
    with pytest.raises(RigError, match="^connection refused$") as e:
        await read_cgminer("127.0.0.1", closed_port(), timeout=1)
    assert e.value.kind == "refused"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"<html>nope</html>", "bad reply: not a cgminer reply"),
        (ANT_SUMMARY[:100], "bad reply: truncated reply"),
        (b"", "bad reply: empty reply"),
    ],
)
async def test_garbage_and_truncated_rigs(rigs, reply: bytes, message: str) -> None:
    rig = await fake(rigs, lambda c, n: reply)
    with pytest.raises(CgminerError) as e:
        await read_cgminer("127.0.0.1", rig.port, timeout=1)
    assert str(e.value) == message
    assert not e.value.offline


async def test_error_status_rig(rigs) -> None:
    denied = (
        b'{"STATUS":[{"STATUS":"E","When":1,"Code":45,"Msg":"Access denied to '
        b'\'summary\' command","Description":"cgminer 4.11.1"}],"id":1}\x00'
    )
    rig = await fake(rigs, lambda c, n: denied)
    with pytest.raises(CgminerError, match="rig reports error: Access denied"):
        await read_cgminer("127.0.0.1", rig.port, timeout=1)


async def test_reply_size_cap(rigs, monkeypatch) -> None:
    monkeypatch.setattr(cgminer, "MAX_REPLY", 1000)
    rig = await fake(rigs, lambda c, n: b'{"STATUS":"' + b"x" * 5000 + b'"}')
    with pytest.raises(CgminerError, match="larger than"):
        await cgminer.query("127.0.0.1", rig.port, "summary", max_bytes=1000)


# ----------------------------------------------------------------------------- Bitaxe HTTP


@pytest.fixture
async def bitaxe_server() -> AsyncIterator[HttpServer]:
    def handler(req: Request) -> Response:
        if req.path == "/api/system/info":
            return Response.json(BITAXE_INFO)
        return Response.text("nope", 404)

    server = HttpServer(handler, host="127.0.0.1", port=0)
    await server.start()
    yield server
    await server.stop()


async def test_read_bitaxe(bitaxe_server: HttpServer) -> None:
    r = await read_bitaxe(
        "127.0.0.1", bitaxe_server.port, timeout=2, rig_id="bx", clock=lambda: 3.0
    )
    assert (r.rig_id, r.time, r.model, r.hostname) == ("bx", 3.0, "Bitaxe Gamma", "bitaxe-garage")
    assert r.hashrate_ths == pytest.approx(1.10452)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("http500", "bad reply: HTTP 500"),
        ("malformed", "bad reply: not JSON"),
        ("truncated", "bad reply: truncated reply"),
        ("slow", "timed out after 0.3 s"),
    ],
)
async def test_bitaxe_failures(bitaxe_server: HttpServer, mode: str, message: str) -> None:
    bitaxe_server.faults.set(mode, delay=5.0)
    with pytest.raises(RigError) as e:
        await read_bitaxe("127.0.0.1", bitaxe_server.port, timeout=0.3)
    assert str(e.value) == message


async def test_bitaxe_refused() -> None:
    with pytest.raises(RigError, match="^connection refused$"):
        await read_bitaxe("127.0.0.1", closed_port(), timeout=1)


# ----------------------------------------------------------------------------- the poller


def test_rig_target_defaults_and_validation() -> None:
    assert RigTarget("a", "127.0.0.1").port is None  # auto: each protocol's own port
    assert RigTarget("a", "127.0.0.1").kind == "auto"
    assert RigTarget("a", "127.0.0.1", kind="cgminer").port == 4028
    assert RigTarget("v", "127.0.0.1", kind="whatsminer-v3").port == 4433
    assert RigTarget("b", "127.0.0.1", kind="bitaxe").port == 80
    with pytest.raises(ValueError):
        RigTarget("c", "127.0.0.1", kind="asic")
    with pytest.raises(ValueError):
        RigTarget("d", "127.0.0.1", port=70000, kind="cgminer")
    with pytest.raises(ValueError, match="duplicate"):
        RigPoller([RigTarget("a", "127.0.0.1"), RigTarget("a", "127.0.0.2")])


async def test_hanging_rig_does_not_delay_the_others(rigs) -> None:
    hang = await fake(rigs, lambda c, n: None)
    fast = [await fake(rigs, by_command(ANT)) for _ in range(5)]
    targets = [RigTarget("hang", "127.0.0.1", hang.port, kind="cgminer")] + [
        RigTarget(f"f{i}", "127.0.0.1", r.port, kind="cgminer") for i, r in enumerate(fast)
    ]
    t0 = time.monotonic()
    poller = RigPoller(targets, timeout=0.5, retries=1, clock=time.monotonic)
    readings = await poller.poll_all()
    elapsed = time.monotonic() - t0
    assert [r.rig_id for r in readings] == [t.rig_id for t in targets]  # target order
    assert readings[0].error == "timed out after 0.5 s"
    assert all(r.ok for r in readings[1:])
    assert all(r.time - t0 < 0.3 for r in readings[1:])  # done long before the deadline
    assert elapsed < 0.5 * (1 + poller.retries)
    assert hang.requests == [FIRST]  # a timeout is not retried
    assert poller.last_cycle is not None and poller.last_cycle.timed_out == 1


async def test_concurrency_bound_is_respected(rigs) -> None:
    shared = {"active": 0, "peak": 0}
    fakes = [await fake(rigs, by_command(ANT), delay=0.05, shared=shared) for _ in range(12)]
    poller = RigPoller(
        [RigTarget(f"r{i}", "127.0.0.1", f.port, kind="cgminer") for i, f in enumerate(fakes)],
        concurrency=3
    )
    readings = await poller.poll_all()
    assert all(r.ok for r in readings)
    assert shared["peak"] <= 3
    assert poller.last_cycle is not None and poller.last_cycle.peak_in_flight == 3


async def test_one_retry_after_a_quick_failure(rigs) -> None:
    denied = b'{"STATUS":[{"STATUS":"E","Msg":"busy"}],"id":1}\x00'
    first = by_command({**ANT, "summary": denied})
    flaky = await fake(rigs, lambda c, n: first(c, n) if n == 1 else by_command(ANT)(c, n))
    poller = RigPoller([RigTarget("x", "127.0.0.1", flaky.port, kind="cgminer")], timeout=1)
    (r,) = await poller.poll_all()
    assert r.ok
    assert poller.last_cycle is not None and poller.last_cycle.retried == 1
    no_retry = RigPoller([RigTarget("x", "127.0.0.1", flaky.port, kind="cgminer")], timeout=1,
                         retries=0)
    flaky.requests.clear()
    flaky.handler = lambda c, n: denied
    (r,) = await no_retry.poll_all()
    assert r.error == "rig reports error: busy"
    assert flaky.requests == [FIRST, "summary"]  # no retry


async def test_poller_never_raises(monkeypatch) -> None:
    poller = RigPoller([RigTarget("a", "127.0.0.1", closed_port(), kind="cgminer")], timeout=1,
                       retries=0)

    async def boom(target: RigTarget) -> RigReading:
        raise ValueError("kaboom")

    monkeypatch.setattr(poller, "_attempt", boom)
    (r,) = await poller.poll_all()
    assert not r.ok and r.error == "internal error: ValueError: kaboom"


async def test_poller_failed_readings_and_mixed_kinds(rigs, bitaxe_server) -> None:
    ant = await fake(rigs, by_command(ANT))
    poller = RigPoller(
        [
            RigTarget("ant", "127.0.0.1", ant.port, kind="cgminer"),
            RigTarget("bx", "127.0.0.1", bitaxe_server.port, kind="bitaxe"),
            RigTarget("down", "127.0.0.1", closed_port(), kind="cgminer"),
        ],
        timeout=1,
        clock=lambda: 42.0,
    )
    async with poller:
        a, b, d = await poller.poll_all()
    assert a.ok and b.ok and b.firmware == "bitaxe"
    assert (d.ok, d.error, d.time, d.host) == (False, "connection refused", 42.0, "127.0.0.1")
    assert poller.last_cycle is not None and poller.last_cycle.retried == 1


async def test_poll_all_with_no_targets() -> None:
    assert await RigPoller([]).poll_all() == ()


# ----------------------------------------------------------------------------- the fleet


def rd(rig_id: str, t: float, error: str | None = None, failure: str | None = None
       ) -> RigReading:
    return RigReading(
        rig_id,
        "127.0.0.1",
        4028,
        t,
        error is None,
        error=error,
        failure=failure,
        hashrate_ths=None if error else 100.0,
    )


def test_fleet_statuses() -> None:
    fleet = RigFleet(interval=10)  # stale_after = 30 s
    assert fleet.status("a", 0) == ("offline", "no reading yet")
    fleet.record(rd("a", 100))
    assert fleet.status("a", 105) == ("ok", None)
    assert fleet.age("a", 105) == 5
    # one failed poll after a good one: stale, with the reason
    fleet.record(rd("a", 110, "timed out after 3 s", "timeout"))
    assert fleet.status("a", 112) == ("stale", "timed out after 3 s (last good 12 s ago)")
    assert fleet.current("a", 112) == rd("a", 100)
    assert fleet.failures("a") == 1
    # the good reading got too old: offline (unreachable) ...
    fleet.record(rd("a", 140, "connection refused", "refused"))
    assert fleet.status("a", 140) == ("offline", "connection refused")
    assert fleet.current("a", 140) is None
    assert fleet.failures("a") == 2
    # ... or error when the rig answered wrongly
    fleet.record(rd("a", 150, "bad reply: truncated reply", "reply"))
    assert fleet.status("a", 150) == ("error", "bad reply: truncated reply")
    fleet.record(rd("a", 160, "rig reports error: Access denied to 'summary' command", "status"))
    assert fleet.status("a", 160)[0] == "error"
    state = fleet.state("a")
    assert state is not None and [e for _, e in state.errors][:2] == [
        "timed out after 3 s",
        "connection refused",
    ]
    # back to ok
    fleet.update([rd("a", 170)])
    assert fleet.status("a", 171) == ("ok", None) and fleet.failures("a") == 0
    # a good reading that is not refreshed (the poller stopped) goes stale
    assert fleet.status("a", 201) == ("stale", "no reading for 31 s")
    assert fleet.counts(171) == {"ok": 1, "stale": 0, "stuck": 0, "offline": 0, "error": 0}


def test_offline_or_error_comes_from_the_typed_failure_not_the_text() -> None:
    """The words of an error never decide the status: the failure kind set where it was
    caught does (a rig whose error message says "timed out" but which answered garbage is
    in error)."""
    fleet = RigFleet(interval=10)
    fleet.record(rd("a", 100, "timed out waiting for chain 2", "reply"))
    assert fleet.status("a", 100) == ("error", "timed out waiting for chain 2")
    fleet.record(rd("b", 100, "something odd", "network"))
    assert fleet.status("b", 100) == ("offline", "something odd")
    fleet.record(rd("c", 100, "internal error: KeyError: 'x'", "internal"))
    assert fleet.status("c", 100)[0] == "error"
    for kind in ("refused", "timeout", "network"):
        assert rd("x", 1, "e", kind).offline
    for kind in ("reply", "status", "internal", None):
        assert not rd("x", 1, "e", kind).offline


async def test_a_budgeted_cycle_reads_every_rig_at_its_pace_whatever_a_hung_one_does(
        rigs) -> None:  # type: ignore[no-untyped-def]
    """Each rig is read every interval, not every interval + the slowest rig's deadline: a
    cycle with a budget returns on time; the hung rig's read goes on in the background, is
    never started twice, and its reading comes with a later cycle."""
    hang = await fake(rigs, lambda c, n: None)
    fast = [await fake(rigs, by_command(ANT)) for _ in range(3)]
    targets = [RigTarget("hang", "127.0.0.1", hang.port, kind="cgminer")] + [
        RigTarget(f"f{i}", "127.0.0.1", r.port, kind="cgminer") for i, r in enumerate(fast)]
    poller = RigPoller(targets, timeout=0.5, retries=0, clock=time.monotonic)
    seen: list[str] = []
    cycles = []
    t0 = time.monotonic()
    for _ in range(4):
        start = time.monotonic()
        readings = await poller.poll_all(on_reading=lambda r: seen.append(r.rig_id),
                                         budget=0.2)
        took = time.monotonic() - start
        assert took < 0.35, took  # on time, not after the hung rig's 0.5 s deadline
        cycles.append([r.rig_id for r in readings])
        await asyncio.sleep(max(0.0, 0.2 - took))
    # every healthy rig in every cycle
    for ids in cycles:
        assert {"f0", "f1", "f2"} <= set(ids), cycles
    # the hung rig: its timeout reading arrives in a later cycle, once per deadline
    assert "hang" not in cycles[0]
    assert any("hang" in ids for ids in cycles[2:]), cycles
    assert len(hang.requests) <= 2  # never two reads at once: one per 0.5 s deadline
    assert seen.count("hang") == sum(ids.count("hang") for ids in cycles)
    assert time.monotonic() - t0 < 1.2
    await poller.aclose()
    assert poller.running == 0
