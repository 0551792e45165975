"""Per-hashboard health, the accepted-shares counter and the nominal hashrate from the
cgminer-style API (TCP 4028), per firmware flavour.

The replies have the shapes real firmware sends (stock bmminer/cgminer on S19/S9, btminer,
BOSminer, Canaan cgminer), quirks included: numbers as strings, ``"63-65-64-62"`` temperature
strings, glued ``}{`` STATS objects, a stray trailing comma, empty slots, S9 chains numbered
6-8.  The network test serves them from a real asyncio server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from tui.model import Hashboard, RigReading
from tui.sources.cgminer import (
    COMMANDS,
    RigProfile,
    parse_reply,
    read_cgminer,
    reading_from_sections,
)

# ----------------------------------------------------------------------------- helpers


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def acs(found: int, bad: dict[int, str] | None = None) -> str:
    """A bmminer ``chain_acs`` string: a space before every group of 8, one mark per chip."""
    out = []
    for j in range(found):
        if j % 8 == 0:
            out.append(" ")
        out.append((bad or {}).get(j, "o"))
    return "".join(out)


def reply(
    section: str,
    items: list[dict],
    *,
    desc: str = "cgminer 4.11.1",
    msg: str = "",
    code: int = 0,
    nul: bool = True,
) -> bytes:
    status = {"STATUS": "S", "When": 1769000000, "Code": code, "Msg": msg, "Description": desc}
    body = '{"STATUS":[' + _dumps(status) + '],"' + section + '":['
    body += ",".join(_dumps(i) for i in items) + '],"id":1}'
    return body.encode() + (b"\x00" if nul else b"")


def bmminer_stats(info: dict, figures: dict, desc: str = "cgminer 4.11.1") -> bytes:
    """bmminer's stats: the two STATS objects glued ("}{"), as the firmware sends them."""
    status = {
        "STATUS": "S",
        "When": 1769000000,
        "Code": 70,
        "Msg": "CGMiner stats",
        "Description": desc,
    }
    return (
        '{"STATUS":['
        + _dumps(status)
        + '],"STATS":['
        + _dumps(info)
        + _dumps(figures)
        + '],"id":1}'
    ).encode() + b"\x00"


def read(**raw: bytes) -> RigReading:
    sections = {cmd: parse_reply(body) for cmd, body in raw.items()}
    return reading_from_sections(sections, rig_id="r", host="127.0.0.1", port=4028, time=1.0)


def by_index(r: RigReading) -> dict[int, Hashboard]:
    return {b.index: b for b in r.boards}


# ----------------------------------------------------------------------------- Antminer stock

ANT_SUMMARY = reply(
    "SUMMARY",
    [
        {
            "Elapsed": 86400,
            "GHS 5s": "104213.55",
            "GHS av": 103987.10,
            "GHS 30m": 104001.22,
            "Found Blocks": 0,
            "Getworks": 3600,
            "Accepted": 10800,
            "Rejected": 12,
            "Hardware Errors": 7,
            "Utility": 7.5,
            "Discarded": 21600,
            "Stale": 0,
            "Get Failures": 0,
            "Local Work": 430000,
            "Remote Failures": 0,
            "Network Blocks": 144,
            "Device Hardware%": 0.0001,
            "Pool Rejected%": 0.11,
            "Best Share": 1234567890,
        }
    ],
    msg="Summary",
    code=11,
)

S19JPRO_INFO = {
    "BMMiner": "1.0.0",
    "Miner": "uart_trans.1.3",
    "CompileTime": "Mon Dec 26 17:10:01 CST 2022",
    "Type": "Antminer S19j Pro",
}


def s19jpro_figures(**chains: Any) -> dict:
    """Stock S19j Pro stats (cgminer 4.11.1, uart_trans): four slots printed, slot 4 empty."""
    fig: dict[str, Any] = {
        "STATS": 0,
        "ID": "BC50",
        "Elapsed": 86400,
        "Calls": 0,
        "Wait": 0.0,
        "Max": 0.0,
        "Min": 99999999.0,
        "GHS 5s": "104213.55",
        "GHS av": 103987.10,
        "rate_30m": 103990.2,
        "Mode": 2,
        "miner_count": 3,
        "frequency": 525,
        "fan_num": 4,
        "fan1": 3480,
        "fan2": 3540,
        "fan3": 3600,
        "fan4": 3510,
        "temp_num": 3,
        "temp1": 54,
        "temp2": 56,
        "temp3": 55,
        "temp4": 0,
        "temp2_1": 68,
        "temp2_2": 71,
        "temp2_3": 0,
        "temp2_4": 0,
        "temp_pcb1": "51-49-54-53",
        "temp_pcb2": "52-50-56-55",
        "temp_pcb3": "51-50-55-54",
        "temp_chip1": "63-65-64-62",
        "temp_chip2": "58-55-71-70",
        "temp_chip3": "57-55-70-69",
        "total_rateideal": 104000.00,
        "total_freqavg": 525.0,
        "total_acn": 378,
        "total_rate": 104213.55,
        "rate_unit": "GH",
        "temp_max": 71,
        "Device Hardware%": 0.0001,
        "no_matching_work": 7,
        "chain_acn1": 126,
        "chain_acn2": 126,
        "chain_acn3": 126,
        "chain_acn4": 0,
        "chain_acs1": acs(126),
        "chain_acs2": acs(126),
        "chain_acs3": acs(126),
        "chain_acs4": "",
        "chain_hw1": 2,
        "chain_hw2": 3,
        "chain_hw3": 2,
        "chain_hw4": 0,
        "chain_rate1": "34700.12",
        "chain_rate2": "34811.40",
        "chain_rate3": "34702.03",
        "chain_rate4": "",
    }
    fig.update(chains)
    return fig


def test_antminer_s19j_pro_healthy() -> None:
    r = read(summary=ANT_SUMMARY, stats=bmminer_stats(S19JPRO_INFO, s19jpro_figures()))
    assert r.protocol == "cgminer" and r.firmware == "antminer"
    assert [b.index for b in r.boards] == [1, 2, 3]  # slot 4 is printed but empty
    b1, b2, b3 = r.boards
    assert b1.hashrate_ths == pytest.approx(34.70012)  # "34700.12" GH/s (a string) -> TH/s
    assert b2.hashrate_ths == pytest.approx(34.8114)
    assert (b1.chips, b1.chips_expected) == (126, 126)  # pyasic: S19j Pro has 126 per board
    assert b1.temp_chip_c == 68.0  # temp2_1 68 vs "63-65-64-62": the hottest
    assert b1.temp_board_c == 54.0  # temp1 54 vs temp_pcb1 "51-49-54-53"
    assert b3.temp_chip_c == 70.0  # temp2_3 is 0 (no reading): the string's max
    assert b1.nominal_ths == pytest.approx(104.0 / 3)  # total_rateideal / miner_count
    assert not any(b.down for b in r.boards) and all(b.problem is None for b in r.boards)
    assert r.boards_down == 0
    assert r.accepted == 10800
    assert r.nominal_ths == pytest.approx(104.0)  # total_rateideal 104000 GH/s
    assert r.firmware_version == "Mon Dec 26 17:10:01 CST 2022"


def test_antminer_board_hashing_nothing_is_down_with_zero_not_none() -> None:
    stats = bmminer_stats(S19JPRO_INFO, s19jpro_figures(chain_rate2="0.00"))
    r = read(summary=ANT_SUMMARY, stats=stats)
    b = by_index(r)
    assert len(r.boards) == 3
    assert b[2].hashrate_ths == 0.0 and b[2].hashrate_ths is not None
    assert b[2].down and b[2].problem == "no hashrate"
    assert not b[1].down and not b[3].down
    assert r.boards_down == 1


def test_antminer_dead_board_with_no_chips() -> None:
    # chain 2 detected (miner_count 3) but no chip answered: acn 0, rate 0, empty chip string;
    # slot 4 is printed too but holds no chain (empty rate): not a board
    stats = bmminer_stats(
        S19JPRO_INFO,
        s19jpro_figures(
            chain_acn2=0,
            chain_acs2="",
            chain_rate2=0,
            temp2_2=0,
            temp_chip2="0-0-0-0",
            **{"GHS 5s": "69402.15"},
        ),
    )
    r = read(summary=ANT_SUMMARY, stats=stats)
    assert [b.index for b in r.boards] == [1, 2, 3]
    dead = by_index(r)[2]
    assert (dead.chips, dead.hashrate_ths, dead.temp_chip_c) == (0, 0.0, None)
    assert dead.down and dead.problem == "no chips found"
    assert r.boards_down == 1


def test_antminer_empty_slots_are_not_boards() -> None:
    # a zero rate in a slot beyond the chains the firmware detected (miner_count) is padding
    stats = bmminer_stats(S19JPRO_INFO, s19jpro_figures(chain_rate4=0))
    assert [b.index for b in read(summary=ANT_SUMMARY, stats=stats).boards] == [1, 2, 3]


def test_antminer_missing_and_bad_chips() -> None:
    stats = bmminer_stats(
        S19JPRO_INFO,
        s19jpro_figures(
            chain_acs1=acs(126, {5: "x", 77: "x"}),  # two found chips returning too few nonces
            chain_acn2=120,
            chain_acs2=acs(120),  # six chips not found at all
        ),
    )
    b = by_index(read(summary=ANT_SUMMARY, stats=stats))
    assert (b[1].chips, b[1].chips_expected, b[1].problem) == (124, 126, "chips 124/126")
    assert (b[2].chips, b[2].chips_expected, b[2].problem) == (120, 126, "chips 120/126")
    assert b[1].down and b[2].down and not b[3].down
    assert b[2].missing_chips == 6


def test_antminer_unknown_model_has_no_expected_count_unless_chips_are_marked_bad() -> None:
    info = dict(S19JPRO_INFO, Type="Antminer S19JPRO Hiveon")  # not in the chip table
    stats = bmminer_stats(
        info,
        s19jpro_figures(
            chain_acs1=acs(126, {3: "x"}),
            chain_acn2=120,
            chain_acs2=acs(120),
        ),
    )
    b = by_index(read(summary=ANT_SUMMARY, stats=stats))
    assert (b[1].chips, b[1].chips_expected, b[1].problem) == (125, 126, "chips 125/126")
    assert (b[2].chips, b[2].chips_expected, b[2].down) == (120, None, False)  # can't tell


S9_SUMMARY = reply(
    "SUMMARY",
    [{"Elapsed": 4271, "GHS 5s": "13512.2", "GHS av": 13498.77, "Accepted": 5123, "Rejected": 9}],
    desc="bmminer 1.0.0",
    msg="Summary",
    code=11,
)


def s9_figures() -> dict:
    """bmminer on an S9: sixteen slots printed, the three chains are 6, 7 and 8."""
    fig: dict[str, Any] = {
        "STATS": 0,
        "ID": "BC50",
        "Elapsed": 4271,
        "GHS 5s": "13512.2",
        "GHS av": 13498.77,
        "miner_count": 3,
        "frequency": "650",
        "fan_num": 2,
        "temp_num": 3,
    }
    for i in range(1, 17):
        live = i in (6, 7, 8)
        fig[f"fan{i}"] = {3: 5880, 6: 5820}.get(i, 0) if i <= 8 else None
        fig[f"temp{i}"] = {6: 55, 7: 57, 8: 54}.get(i, 0)
        fig[f"temp2_{i}"] = {6: 72, 7: 75, 8: 71}.get(i, 0)
        fig[f"temp3_{i}"] = 0
        fig[f"chain_rateideal{i}"] = 4540.0 if live else 0
        fig[f"chain_acn{i}"] = 63 if live else 0
        fig[f"chain_acs{i}"] = acs(63) if live else ""
        fig[f"chain_hw{i}"] = 3 if live else 0
        fig[f"chain_rate{i}"] = {6: "4502.11", 7: "4498.70", 8: "4511.39"}.get(i, "")
    fig = {k: v for k, v in fig.items() if v is not None}
    fig["total_rateideal"] = 13620.0
    fig["total_acn"] = 189
    return fig


def test_antminer_s9_chains_6_7_8() -> None:
    info = {
        "BMMiner": "2.0.0",
        "Miner": "16.8.1.3",
        "CompileTime": "Fri Nov 17 17:37:49 CST 2017",
        "Type": "Antminer S9",
    }
    r = read(summary=S9_SUMMARY, stats=bmminer_stats(info, s9_figures(), desc="bmminer 1.0.0"))
    assert [b.index for b in r.boards] == [6, 7, 8]  # slots as the firmware numbers them
    b6 = by_index(r)[6]
    assert b6.hashrate_ths == pytest.approx(4.50211)
    assert (b6.chips, b6.chips_expected) == (63, 63)
    assert (b6.temp_board_c, b6.temp_chip_c) == (55.0, 72.0)
    assert b6.nominal_ths == pytest.approx(4.54)  # chain_rateideal6
    assert r.nominal_ths == pytest.approx(13.62)
    assert r.boards_down == 0 and r.accepted == 5123


def test_antminer_newer_chain_list_shape() -> None:
    # newer Antminer firmware: a "chain" list per board (STATUS as an object, not a list)
    stats = (
        b'{"STATUS":{"STATUS":"S","when":1709489345,"Msg":"stats","api_version":"1.0.0"},'
        b'"INFO":{"miner_version":"49.0.1.3","CompileTime":"Wed Mar 8 15:30:32 CST 2023",'
        b'"type":"Antminer S21"},"STATS":[{"elapsed":83976,"rate_5s":200789.48,'
        b'"rate_30m":200222.93,"rate_avg":200189.75,"rate_ideal":200000.0,"rate_unit":"GH/s",'
        b'"chain_num":3,"fan_num":4,"chain":['
        b'{"index":0,"freq_avg":490,"rate_ideal":66666.0,"rate_real":66910.1,"asic_num":108,'
        b'"asic":"' + acs(108).encode() + b'","temp_pic":[44,45,60,61],"temp_pcb":[44,45,60,61],'
        b'"temp_chip":[59,60,75,76],"hw":12,"sn":"SN0"},'
        b'{"index":1,"freq_avg":490,"rate_ideal":66666.0,"rate_real":0.0,"asic_num":0,'
        b'"asic":"","temp_pic":[0,0,0,0],"temp_pcb":[0,0,0,0],"temp_chip":[0,0,0,0],"hw":0},'
        b'{"index":2,"freq_avg":490,"rate_ideal":66666.0,"rate_real":66843.2,"asic_num":105,'
        b'"asic":"' + acs(105).encode() + b'","temp_pcb":[43,44,59,60],"temp_chip":[58,59,74,75]}'
        b']}],"id":1}'
    )
    summary = reply(
        "SUMMARY",
        [{"Elapsed": 83976, "GHS 5s": "133753.3", "GHS av": 200189.75, "Accepted": 64000}],
        msg="Summary",
        code=11,
    )
    r = read(summary=summary, stats=stats)
    b0, b1, b2 = r.boards
    assert [b.index for b in r.boards] == [0, 1, 2]
    assert b0.hashrate_ths == pytest.approx(66.9101)
    assert (b0.chips, b0.chips_expected) == (108, 108)  # the model is in INFO "type"
    assert (b0.temp_board_c, b0.temp_chip_c) == (61.0, 76.0)
    assert b0.nominal_ths == pytest.approx(66.666)
    assert b1.hashrate_ths == 0.0 and b1.problem == "no chips found"
    assert b2.problem == "chips 105/108"  # pyasic: S21 has 108 chips per board
    assert r.nominal_ths == pytest.approx(200.0) and r.boards_down == 2
    assert r.firmware_version == "Wed Mar 8 15:30:32 CST 2023"


def test_untrusted_values_are_none() -> None:
    stats = bmminer_stats(
        S19JPRO_INFO,
        s19jpro_figures(
            chain_rate1="inf",
            chain_rate2="-34811.40",
            chain_rate3="lots",
            chain_acn3="many",
            temp2_1=-273,
            temp_chip1="nan",
            temp1="hot",
            temp_pcb1="",
            total_rateideal="nan",
        ),
    )
    r = read(summary=ANT_SUMMARY, stats=stats)
    b = by_index(r)
    assert [b.index for b in r.boards] == [1, 2, 3]  # the chip strings still show the chains
    assert b[1].hashrate_ths is None and b[2].hashrate_ths is None and b[3].hashrate_ths is None
    assert (b[1].temp_chip_c, b[1].temp_board_c) == (None, None)
    assert b[3].chips == 126  # acn unreadable: the chip string's count
    assert not any(x.down for x in r.boards)  # unknown is not down
    assert r.nominal_ths is None


def test_reply_without_board_data() -> None:
    summary = reply(
        "SUMMARY",
        [{"Elapsed": 500, "MHS 5s": 1_000_000, "MHS av": 990_000}],
        msg="Summary",
        code=11,
    )
    stats = reply("STATS", [{"STATS": 0, "ID": "X0", "Elapsed": 500}], msg="CGMiner stats")
    r = read(summary=summary, stats=stats)
    assert r.ok and r.boards == () and r.boards_down == 0
    assert r.accepted is None and r.nominal_ths is None and r.firmware_version is None
    assert r.protocol == "cgminer"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(804, 804), ("804", 804), (804.0, 804), (-1, None), ("nan", None), (None, None)],
)
def test_accepted_counter(value: Any, expected: int | None) -> None:
    item: dict[str, Any] = {"Elapsed": 5, "MHS 5s": 1_000_000}
    if value is not None:
        item["Accepted"] = value
    assert read(summary=reply("SUMMARY", [item])).accepted == expected


# ----------------------------------------------------------------------------- Whatsminer

# btminer: MH/s figures, Power and Factory GHS in summary, no NUL, a trailing ",}"
WM_SUMMARY = (
    b'{"STATUS":[{"STATUS":"S","Msg":"Summary","Description":"btminer"}],'
    b'"SUMMARY":[{"Elapsed":2648,"MHS av":84983730.62,"MHS 5s":68423869.64,'
    b'"MHS 1m":86361423.06,"MHS 5m":84941366.02,"MHS 15m":84969424.09,"HS RT":84941366.02,'
    b'"Accepted":804,"Rejected":0,"Total MH":225043191209.0000,"Temperature":80.00,'
    b'"freq_avg":646,"Fan Speed In":4530,"Fan Speed Out":4530,"Power":3593,'
    b'"Power Rate":42.31,"Uptime":20507,"Env Temp":32.00,"Power Mode":"Normal",'
    b'"Factory GHS":104709,"Power Limit":3600,"Chip Temp Min":75.17,"Chip Temp Max":101.25,'
    b'"Chip Temp Avg":89.60,"MAC":"C4:08:28:01:2A:3B",'
    b'"Firmware Version":"\'20220311.20.REL\'","Btminer Fast Boot":"disable",}],"id":1}'
)
WM_DEVDETAILS = (
    b'{"STATUS":[{"STATUS":"S","Msg":"Device Details","Description":"btminer"}],'
    b'"DEVDETAILS":[{"DEVDETAILS":0,"Name":"SM","ID":0,"Driver":"bitmicro","Kernel":"",'
    b'"Model":"M30S+VE40"},{"DEVDETAILS":1,"Name":"SM","ID":1,"Driver":"bitmicro",'
    b'"Kernel":"","Model":"M30S+VE40"},{"DEVDETAILS":2,"Name":"SM","ID":2,'
    b'"Driver":"bitmicro","Kernel":"","Model":"M30S+VE40"}],"id":1}'
)


def wm_dev(slot: int, mhs: float, chips: int, temp: float, chip_max: float) -> str:
    return _dumps(
        {
            "ASC": slot,
            "Slot": slot,
            "Enabled": "Y",
            "Status": "Alive",
            "Temperature": temp,
            "Chip Frequency": 587,
            "MHS av": mhs,
            "MHS 5s": mhs * 0.98,
            "MHS 1m": mhs,
            "MHS 5m": mhs,
            "MHS 15m": mhs,
            "HS RT": mhs,
            "Accepted": 18,
            "Rejected": 0,
            "Last Valid Work": 1643183296,
            "Upfreq Complete": 1,
            "Effective Chips": chips,
            "PCB SN": f"HEM1EP9C400929K6000{slot}",
            "Chip Data": "K88Z347-2039 BINV01-195001D",
            "Chip Temp Min": chip_max - 17,
            "Chip Temp Max": chip_max,
            "Chip Temp Avg": chip_max - 8,
            "chip_vol_diff": 9,
        }
    )


def wm_devs(*devs: str, section: str = "DEVS") -> bytes:
    return (
        b'{"STATUS":[{"STATUS":"S","Msg":"3 ASC(s)","Description":"btminer"}],"'
        + section.encode()
        + b'":['
        + ",".join(devs).encode()
        + b',],"id":1}'
    )


WM_DEVS = wm_devs(
    wm_dev(0, 34342284.8, 156, 80, 97.0),
    wm_dev(1, 34259948.84, 156, 79, 96.5),
    wm_dev(2, 0.0, 0, 41, 0.0),  # a board that stopped: no chips, no hashrate
)


def test_whatsminer_devs() -> None:
    r = read(summary=WM_SUMMARY, devdetails=WM_DEVDETAILS, devs=WM_DEVS)
    assert r.firmware == "whatsminer" and r.model == "M30S+VE40"
    assert [b.index for b in r.boards] == [0, 1, 2]
    b0, b1, b2 = r.boards
    assert b0.hashrate_ths == pytest.approx(34.3422848)  # "MHS 1m" MH/s -> TH/s
    assert (b0.chips, b0.chips_expected) == (156, None)  # btminer says nothing of expected
    assert (b0.temp_board_c, b0.temp_chip_c) == (80.0, 97.0)
    assert not b0.down and not b1.down
    assert b2.hashrate_ths == 0.0 and b2.down and b2.problem == "no chips found"
    assert b2.temp_chip_c is None  # 0 is no reading
    assert r.boards_down == 1
    assert r.accepted == 804
    assert r.nominal_ths == pytest.approx(104.709)  # Factory GHS
    assert r.firmware_version == "20220311.20.REL"
    assert r.mac == "C4:08:28:01:2A:3B"


def test_whatsminer_edevs_section_is_read_too() -> None:
    edevs = wm_devs(wm_dev(0, 34342284.8, 156, 80, 97.0), wm_dev(1, 34259948.84, 150, 79, 96.5))
    r = read(summary=WM_SUMMARY, edevs=edevs)
    assert [(b.index, b.chips) for b in r.boards] == [(0, 156), (1, 150)]


def test_whatsminer_ths_figures_labelled_mhs_are_rescaled() -> None:
    # newer btminer sends TH/s in the "MHS" fields of DEVS: the boards would add up to a
    # millionth of the rig's own total
    devs = wm_devs(
        wm_dev(0, 58.97, 100, 70, 80), wm_dev(1, 58.50, 100, 70, 80), wm_dev(2, 59.10, 100, 70, 80)
    )
    summary = WM_SUMMARY.replace(b'"MHS 5s":68423869.64', b'"MHS 5s":176570000.0')
    r = read(summary=summary, devs=devs)
    assert [b.hashrate_ths for b in r.boards] == pytest.approx([58.97, 58.50, 59.10])


# ----------------------------------------------------------------------------- Braiins OS

BOS_DESC = "BOSminer+ 0.2.0-ea64aec8e"
BOS_SUMMARY = reply(
    "SUMMARY",
    [
        {
            "Accepted": 11200,
            "Elapsed": 7200,
            "MHS 15m": 13210000.1,
            "MHS 1m": 13402000.5,
            "MHS 5m": 13300000.0,
            "MHS 5s": 13512345.678,
            "MHS av": 13250000.0,
            "Rejected": 3,
        }
    ],
    desc=BOS_DESC,
    msg="Summary",
    code=11,
    nul=False,
)
BOS_DEVDETAILS = reply(
    "DEVDETAILS",
    [
        {
            "Chips": chips,
            "Cores": 7182,
            "DEVDETAILS": i,
            "Device Path": "",
            "Driver": "",
            "Frequency": 799682118,
            "ID": 6 + i,
            "Kernel": "",
            "Model": "Bitmain Antminer S9",
            "Name": f"Hash Chain {6 + i}",
            "Voltage": 8.416799545288086,
        }
        for i, chips in enumerate((63, 61, 63))
    ],
    desc=BOS_DESC,
    msg="Device Details",
    code=69,
    nul=False,
)
BOS_TEMPS = reply(
    "TEMPS",
    [
        {"Board": 81.875, "Chip": 104.625, "ID": 6, "TEMP": 0},
        {"Board": 85.875, "Chip": 108.9375, "ID": 7, "TEMP": 1},
        {"Board": 84.4375, "Chip": 105.4375, "ID": 8, "TEMP": 2},
    ],
    desc=BOS_DESC,
    msg="3 Temp(s)",
    code=201,
    nul=False,
)
BOS_DEVS = reply(
    "DEVS",
    [
        {
            "ASC": i,
            "Name": "BC5",
            "ID": 6 + i,
            "Enabled": "Y",
            "Status": "Alive",
            "Temperature": 0.0,
            "MHS av": mhs,
            "MHS 5s": mhs,
            "MHS 1m": mhs,
            "MHS 5m": mhs,
            "MHS 15m": mhs,
            "Nominal MHS": 4540000.0,
            "Accepted": 3700,
            "Rejected": 1,
            "Hardware Errors": 20,
            "Utility": 30.8,
            "Last Share Pool": 0,
            "Last Share Time": 1595938400,
            "Total MH": mhs * 7200,
            "Diff1 Work": 0,
            "Difficulty Accepted": 2.4e8,
            "Difficulty Rejected": 65536.0,
            "Last Share Difficulty": 65536.0,
            "Last Valid Work": 1595938480,
            "Device Hardware%": 0.0,
            "Device Rejected%": 0.02,
            "Device Elapsed": 7200,
        }
        for i, mhs in enumerate((4504000.2, 4410000.1, 4598345.4))
    ],
    desc=BOS_DESC,
    msg="3 ASC(s)",
    code=9,
    nul=False,
)


def test_braiins_devs_devdetails_and_temps() -> None:
    r = read(summary=BOS_SUMMARY, devdetails=BOS_DEVDETAILS, temps=BOS_TEMPS, devs=BOS_DEVS)
    assert r.firmware == "braiins"
    assert [b.index for b in r.boards] == [6, 7, 8]  # "Hash Chain 6": ID 6 everywhere
    b6, b7, _ = r.boards
    assert b6.hashrate_ths == pytest.approx(4.5040002)  # "MHS 1m"
    assert (b6.chips, b6.chips_expected) == (63, 63)  # devdetails Chips; S9: 63 (pyasic)
    assert (b6.temp_board_c, b6.temp_chip_c) == (81.875, 104.625)  # temps; DEVS' 0.0 unused
    assert b6.nominal_ths == pytest.approx(4.54)
    assert b7.down and b7.problem == "chips 61/63"
    assert r.boards_down == 1
    assert r.nominal_ths == pytest.approx(13.62)  # sum of "Nominal MHS"
    assert r.accepted == 11200
    assert r.firmware_version == BOS_DESC


def test_braiins_without_devs_still_has_chips_and_temps() -> None:
    r = read(summary=BOS_SUMMARY, devdetails=BOS_DEVDETAILS, temps=BOS_TEMPS)
    assert [(b.index, b.chips, b.temp_chip_c) for b in r.boards] == [
        (6, 63, 104.625),
        (7, 61, 108.9375),
        (8, 63, 105.4375),
    ]
    assert all(b.hashrate_ths is None for b in r.boards)


# ----------------------------------------------------------------------------- Avalon

AVA_SUMMARY = reply(
    "SUMMARY",
    [
        {
            "Elapsed": 975,
            "MHS av": 184007000.0,
            "MHS 30s": 199241070.0,
            "MHS 1m": 197266944.16,
            "MHS 5m": 186968586.55,
            "MHS 15m": "inf",
            "Accepted": 148,
            "Rejected": 1,
        }
    ],
    msg="Summary",
    code=11,
)
PVT_T = " ".join(f"{60 + i % 15:3d}" for i in range(160))
#: the "MM ID0" blob of an Avalon 15-194 (pyasic's test data), board 2 hashing nothing
AVA_MM = (
    "Ver[15-194-24102401_25462b2_9ddf522] DNA[020100008c699117] "
    "MEMFREE[1392832.1381104] NETFAIL[0 0 0 0 0 0 0 0] "
    "SYSTEMSTATU[Work: In Work, Hash Board: 3 ] Elapsed[975] BOOTBY[0x04.00000000] "
    "LW[714031] MH[0 0 0] DHW[0] HW[0] DH[1.299%] Temp[31] TMax[78] TAvg[70] Fan1[4275] "
    "Fan2[4282] FanR[49%] Vo[296] PS[0 1209 1187 297 3526 1188 3731] WALLPOWER[3731] "
    "GHSspd[199241.07] DHspd[1.299%] GHSmm[201920.42] GHSavg[184007.00] WU[2570548.05] "
    "Freq[345.94] Led[0] MGHS[59459.52 61407.83 0.00] MTmax[77 78 0] MTavg[69 70 0] "
    "TA[480] Core[A3197S] PING[131] POWS[0] EEPROM[160 160 160] HASHS[0 0 0] POOLS[0] "
    f"SoftOFF[0] ECHU[0 0 0] ECMM[0] PVT_T0[{PVT_T}] PVT_T1[{PVT_T}] "
    f"PVT_T2[{' '.join(['  0'] * 160)}] WORKMODE[1]"
)
AVA_STATS = reply(
    "STATS",
    [
        {
            "STATS": 0,
            "ID": "AVA100",
            "Elapsed": 975,
            "Calls": 0,
            "Wait": 0.0,
            "Max": 0.0,
            "Min": 99999999.0,
            "MM ID0": AVA_MM,
            "MM Count": 1,
            "Smart Speed": 1,
            "Nonce Mask": 25,
        },
        {"STATS": 1, "ID": "POOL0", "Elapsed": 975},
    ],
    msg="CGMiner stats",
    code=70,
)
AVA_VERSION = reply(
    "VERSION",
    [
        {
            "CGMiner": "4.11.1",
            "API": "3.7",
            "STM8": "20.08.01",
            "PROD": "AvalonMiner 15-194",
            "MODEL": "15-194",
            "HWTYPE": "MM4v2_X3",
            "SWTYPE": "MM319",
            "VERSION": "24102401_25462b2_9ddf522",
            "LOADER": "d0d779de.00",
            "DNA": "020100008c699117",
            "MAC": "b4a2eb3fa0c1",
            "UPAPI": "2",
        }
    ],
    msg="CGMiner versions",
    code=22,
)


def test_avalon_mm_boards() -> None:
    r = read(summary=AVA_SUMMARY, stats=AVA_STATS, version=AVA_VERSION)
    assert r.firmware == "avalon"
    b0, b1, b2 = r.boards
    assert [b.index for b in r.boards] == [0, 1, 2]
    assert b0.hashrate_ths == pytest.approx(59.45952)  # MGHS, GH/s
    assert (b0.temp_chip_c, b0.chips) == (77.0, 160)  # MTmax; chips with a PVT_T reading
    assert b2.hashrate_ths == 0.0 and b2.down and b2.chips is None
    assert r.boards_down == 1
    assert r.nominal_ths == pytest.approx(201.92042)  # GHSmm
    assert r.accepted == 148
    assert r.firmware_version == "24102401_25462b2_9ddf522"
    assert r.mac == "B4:A2:EB:3F:A0:C1"


# ----------------------------------------------------------------------------- over TCP

Handler = Callable[[str], bytes]


def serve(replies: dict[str, bytes]) -> Handler:
    """A rig answering ``a+b`` with one section per command it knows (btminer: an error)."""

    def handler(command: str) -> bytes:
        if "+" not in command:
            return replies.get(command, b'{"STATUS":"E","Code":14,"Msg":"invalid cmd"}')
        parts = [
            f'"{c}":[{replies[c].rstrip(bytes(1)).decode()}]'
            for c in command.split("+")
            if c in replies
        ]
        return ("{" + ",".join(parts) + ',"id":1}').encode() + b"\x00"

    return handler


class Rig:
    """One cgminer-API rig on 127.0.0.1 (port 0): one request per connection."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[str] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> Rig:
        self.server = await asyncio.start_server(self._on, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _on(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = b""
            while not data.rstrip().endswith(b"}"):
                chunk = await reader.read(4096)
                if not chunk:
                    break
                data += chunk
            command = json.loads(data)["command"]
            self.requests.append(command)
            writer.write(self.handler(command))
            await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def rigs() -> AsyncIterator[list[Rig]]:
    made: list[Rig] = []
    yield made
    for r in made:
        await r.stop()


async def start(rigs: list[Rig], replies: dict[str, bytes]) -> Rig:
    rig = await Rig(serve(replies)).start()
    rigs.append(rig)
    return rig


async def test_read_cgminer_asks_each_flavour_for_its_board_data(rigs: list[Rig]) -> None:
    ant = await start(
        rigs, {"summary": ANT_SUMMARY, "stats": bmminer_stats(S19JPRO_INFO, s19jpro_figures())}
    )
    wm = await start(rigs, {"summary": WM_SUMMARY, "devdetails": WM_DEVDETAILS, "devs": WM_DEVS})
    bos = await start(
        rigs,
        {
            "summary": BOS_SUMMARY,
            "devdetails": BOS_DEVDETAILS,
            "temps": BOS_TEMPS,
            "devs": BOS_DEVS,
        },
    )
    ava = await start(rigs, {"summary": AVA_SUMMARY, "stats": AVA_STATS, "version": AVA_VERSION})
    last: dict[str, RigReading] = {}
    for rig, flavour, indexes in [
        (ant, "antminer", [1, 2, 3]),
        (wm, "whatsminer", [0, 1, 2]),
        (bos, "braiins", [6, 7, 8]),
        (ava, "avalon", [0, 1, 2]),
    ]:
        profile = RigProfile()
        for _ in range(2):  # first contact, then the learnt flavour's own commands
            r = await read_cgminer("127.0.0.1", rig.port, timeout=2, profile=profile)
            assert (r.ok, r.firmware, r.protocol) == (True, flavour, "cgminer")
            assert [b.index for b in r.boards] == indexes, (flavour, rig.requests)
            assert r.accepted is not None
            last[flavour] = r
        assert rig.requests[-1] == "+".join(COMMANDS[flavour])
    assert "devs" in wm.requests[1].split("+")  # asked right after first contact
    assert last["antminer"].boards_down == 0 and last["antminer"].nominal_ths == 104.0
    assert by_index(last["avalon"])[2].down  # the Avalon's third board hashes nothing
    wm_r = await read_cgminer("127.0.0.1", wm.port, timeout=2, profile=RigProfile("whatsminer"))
    assert wm_r.boards_down == 1 and wm_r.boards[0].hashrate_ths == pytest.approx(34.3422848)
    bos_r = await read_cgminer("127.0.0.1", bos.port, timeout=2, profile=RigProfile("braiins"))
    assert [b.chips for b in bos_r.boards] == [63, 61, 63] and bos_r.boards_down == 1
    if "devs" in COMMANDS["braiins"]:
        assert all(b.hashrate_ths is not None for b in bos_r.boards)
