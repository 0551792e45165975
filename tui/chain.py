"""Bitcoin mainnet consensus arithmetic and mempool.space's retarget projection.

Pure functions, no I/O.  Each function names the code it reproduces:

* ``decode_compact`` / ``bits_to_target`` / ``target_to_bits``: Bitcoin Core
  ``arith_uint256::SetCompact`` / ``GetCompact`` (src/arith_uint256.cpp).
* ``difficulty_from_bits``: Core ``GetDifficulty`` (src/rpc/blockchain.cpp).
* ``next_work_required``: Core ``CalculateNextWorkRequired`` (src/pow.cpp), mainnet.
* ``block_work``: Core ``GetBlockProof`` (src/chain.cpp).
* ``block_subsidy``: Core ``GetBlockSubsidy`` (src/validation.cpp).
* ``project_retarget``: mempool.space ``calcDifficultyAdjustment``
  (backend/src/api/difficulty-adjustment.ts), mainnet, converted from ms to s.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "COIN",
    "EXPECTED_HASHES_PER_DIFFICULTY",
    "HALVING_INTERVAL",
    "POW_LIMIT",
    "POW_LIMIT_BITS",
    "RETARGET_INTERVAL",
    "TARGET_SPACING",
    "TARGET_TIMESPAN",
    "RetargetProjection",
    "bits_to_target",
    "block_subsidy",
    "block_work",
    "decode_compact",
    "difficulty_from_bits",
    "next_work_required",
    "project_retarget",
    "target_to_bits",
]

EXPECTED_HASHES_PER_DIFFICULTY = 2**32
TARGET_SPACING = 600  # seconds (nPowTargetSpacing)
RETARGET_INTERVAL = 2016  # blocks (DifficultyAdjustmentInterval)
TARGET_TIMESPAN = 1_209_600  # seconds (nPowTargetTimespan = 14 days)
HALVING_INTERVAL = 210_000  # blocks (nSubsidyHalvingInterval)
COIN = 100_000_000  # satoshis per BTC
POW_LIMIT_BITS = 0x1D00FFFF

_UINT256_MASK = (1 << 256) - 1
_UINT32_MAX = 0xFFFFFFFF
# Core's mainnet consensus.powLimit is the uint256 0x00000000ffff...ff (2**224 - 1), which
# is slightly larger than the target that POW_LIMIT_BITS decodes to. Every value in
# [POW_LIMIT, 2**224 - 1] re-encodes to 0x1d00ffff, so capping at either gives the same bits.
_CORE_POW_LIMIT = (1 << 224) - 1
_MIN_TIMESPAN = TARGET_TIMESPAN // 4  # 302_400
_MAX_TIMESPAN = TARGET_TIMESPAN * 4  # 4_838_400


def _check_uint32(bits: int) -> None:
    if not 0 <= bits <= _UINT32_MAX:
        raise ValueError(f"compact bits must be a 32-bit unsigned integer, got {bits!r}")


def decode_compact(bits: int) -> tuple[int, bool, bool]:
    """Decode compact ``bits`` exactly like Core's ``SetCompact``.

    Returns ``(target, negative, overflow)``. ``target`` is the value Core's
    ``arith_uint256`` ends up holding: the magnitude (the sign bit is not applied)
    reduced mod 2**256. For exponent <= 3 the 23-bit mantissa is shifted right first,
    and the flags are tested on that shifted mantissa, so ``0x01803456`` decodes to 0
    and is not negative. Raises ``ValueError`` if ``bits`` is not a uint32.
    """
    _check_uint32(bits)
    size = bits >> 24
    word = bits & 0x007FFFFF
    if size <= 3:
        word >>= 8 * (3 - size)
        target = word
    else:
        target = (word << (8 * (size - 3))) & _UINT256_MASK
    negative = word != 0 and (bits & 0x00800000) != 0
    overflow = word != 0 and (
        size > 34 or (word > 0xFF and size > 33) or (word > 0xFFFF and size > 32)
    )
    return target, negative, overflow


def bits_to_target(bits: int) -> int:
    """Target encoded by compact ``bits`` (Core ``SetCompact``).

    Raises ``ValueError`` where Core would set ``pfNegative`` or ``pfOverflow``
    (use ``decode_compact`` to get Core's raw value and flags instead). A zero target
    (e.g. ``0x00000000``, ``0x03000000``) is returned as 0, as Core does; Core's
    ``CheckProofOfWork`` rejects it separately.
    """
    target, negative, overflow = decode_compact(bits)
    if negative:
        raise ValueError(f"compact bits 0x{bits:08x} encode a negative target")
    if overflow:
        raise ValueError(f"compact bits 0x{bits:08x} overflow 256 bits")
    return target


def target_to_bits(target: int) -> int:
    """Compact encoding of ``target`` (Core ``GetCompact(fNegative=false)``).

    Keeps the top three bytes (truncating the rest); if that mantissa would have
    the sign bit 0x00800000 set it is shifted down a byte and the exponent bumped.
    Raises ``ValueError`` unless ``0 <= target < 2**256``.
    """
    if not 0 <= target <= _UINT256_MASK:
        raise ValueError(f"target must fit in 256 unsigned bits, got {target!r}")
    size = (target.bit_length() + 7) // 8
    if size <= 3:
        compact = target << (8 * (3 - size))
    else:
        compact = target >> (8 * (size - 3))
    if compact & 0x00800000:
        compact >>= 8
        size += 1
    return compact | (size << 24)


def difficulty_from_bits(bits: int) -> float:
    """Difficulty of compact ``bits``, computed like Core's ``GetDifficulty``.

    ``0xffff / (bits & 0x00ffffff)`` in doubles (note: Core masks 24 bits here, sign
    bit included), then x256 / /256 one step at a time until the exponent is 29.
    A zero mantissa gives ``math.inf`` (Core divides by 0.0). No validity check on
    the encoding, as in Core.
    """
    _check_uint32(bits)
    shift = (bits >> 24) & 0xFF
    mantissa = bits & 0x00FFFFFF
    if mantissa == 0:
        return math.inf
    diff = float(0x0000FFFF) / float(mantissa)
    while shift < 29:
        diff *= 256.0
        shift += 1
    while shift > 29:
        diff /= 256.0
        shift -= 1
    return diff


def next_work_required(last_bits: int, first_block_time: int, last_block_time: int) -> int:
    """Compact bits of the next period (Core ``CalculateNextWorkRequired``, mainnet).

    ``last_bits`` is the nBits of the last block of the period (height % 2016 == 2015),
    ``first_block_time`` the time of the period's first block (height % 2016 == 0), and
    ``last_block_time`` the time of that last block (2015 intervals, as in Core).
    The timespan is clamped to [302400, 4838400]; ``target * timespan // 1209600`` is
    computed on 256 bits like Core's ``arith_uint256`` (the product wraps mod 2**256,
    which only happens for targets far above the pow limit, i.e. never for valid
    mainnet bits; Core's chainparams sanity test guarantees that), capped at the pow
    limit and re-encoded. As in Core, the sign/overflow flags of ``last_bits`` are
    ignored; ``ValueError`` only if it is not a uint32.
    """
    timespan = last_block_time - first_block_time
    if timespan < _MIN_TIMESPAN:
        timespan = _MIN_TIMESPAN
    if timespan > _MAX_TIMESPAN:
        timespan = _MAX_TIMESPAN
    target, _negative, _overflow = decode_compact(last_bits)
    new_target = ((target * timespan) & _UINT256_MASK) // TARGET_TIMESPAN
    if new_target > _CORE_POW_LIMIT:
        new_target = _CORE_POW_LIMIT
    return target_to_bits(new_target)


def block_subsidy(height: int) -> int:
    """Block subsidy in satoshis at ``height`` (Core ``GetBlockSubsidy``)."""
    if height < 0:
        raise ValueError(f"height must be >= 0, got {height!r}")
    halvings = height // HALVING_INTERVAL
    if halvings >= 64:
        return 0
    return (50 * COIN) >> halvings


def block_work(bits: int) -> int:
    """Expected hashes to find a block at ``bits`` (Core ``GetBlockProof``).

    ``2**256 // (target + 1)``; 0 for a negative, overflowing or zero target.
    """
    target, negative, overflow = decode_compact(bits)
    if negative or overflow or target == 0:
        return 0
    # Core: (~target / (target + 1)) + 1, which equals 2**256 // (target + 1).
    return ((~target & _UINT256_MASK) // (target + 1)) + 1


POW_LIMIT = bits_to_target(POW_LIMIT_BITS)


@dataclass(frozen=True)
class RetargetProjection:
    """mempool.space's /api/v1/difficulty-adjustment, with ms fields in seconds.

    Each field is mempool's number; the ms ones (``timeAvg``, ``adjustedTimeAvg``,
    ``remainingTime``, ``estimatedRetargetDate``, ``timeOffset``) are divided by 1000,
    so they keep mempool's truncation to whole milliseconds.
    """

    progress_percent: float  # progressPercent, 0..100
    difficulty_change: float  # difficultyChange, percent in [-75, 300]
    estimated_retarget_time: float  # estimatedRetargetDate / 1000, unix seconds
    remaining_blocks: int  # remainingBlocks
    remaining_time: float  # remainingTime / 1000, seconds
    previous_retarget: float  # previousRetarget, passed through
    previous_time: int  # previousTime = epoch start time, unix seconds
    next_retarget_height: int  # nextRetargetHeight
    time_avg: float  # timeAvg / 1000, seconds per block in this epoch so far
    adjusted_time_avg: float  # adjustedTimeAvg / 1000, seconds per block (504-block window)
    time_offset: float  # timeOffset / 1000; testnet only, always 0.0 on mainnet
    expected_blocks: float  # expectedBlocks, blocks due since the epoch started


def _js_divide(numerator: float, denominator: float) -> float:
    """``numerator / denominator`` with IEEE-754 (JavaScript) semantics for a zero divisor."""
    if denominator == 0:
        if numerator == 0 or math.isnan(numerator):
            return math.nan
        return math.copysign(math.inf, numerator) * math.copysign(1.0, denominator)
    return numerator / denominator


def project_retarget(
    *,
    epoch_start_time: int,
    quarter_epoch_time: int | None,
    now: int,
    tip_height: int,
    previous_retarget: float,
    tip_time: int,
) -> RetargetProjection:
    """Port of mempool.space's ``calcDifficultyAdjustment`` for mainnet.

    ``epoch_start_time``: time of block ``tip_height - tip_height % 2016`` (mempool's
    ``DATime``); ``quarter_epoch_time``: time of block ``tip_height - 503`` or None
    (``quarterEpochTime``); ``now``: unix seconds; ``previous_retarget``: percent change
    of the last retarget; ``tip_time``: time of the tip block (only used once the
    epoch has 2015 blocks, i.e. the next retarget is locked in). All times in seconds.

    Faithful details: the elapsed time is clamped at 0 but the 2015-block span is not;
    the 504-block window is used only when ``quarter_epoch_time`` is truthy (None and 0
    both fall back) and fewer than 503 blocks are in the epoch; a zero span yields
    +Infinity in JavaScript and hence the +300 clamp; averages are floored to whole
    milliseconds before the ETA is computed.
    """
    block_seconds_target = TARGET_SPACING
    epoch_length = RETARGET_INTERVAL

    diff_seconds = max(0, now - epoch_start_time)
    blocks_in_epoch = tip_height % epoch_length if tip_height >= 0 else 0
    progress_percent = blocks_in_epoch / epoch_length * 100 if tip_height >= 0 else 100.0
    remaining_blocks = epoch_length - blocks_in_epoch
    next_retarget_height = tip_height + remaining_blocks if tip_height >= 0 else 0
    expected_blocks = diff_seconds / block_seconds_target
    actual_timespan = (tip_time if blocks_in_epoch == 2015 else now) - epoch_start_time

    time_avg_secs = (
        diff_seconds / blocks_in_epoch if blocks_in_epoch else float(block_seconds_target)
    )
    adjusted_time_avg_secs = time_avg_secs

    if quarter_epoch_time and blocks_in_epoch < 503:
        time_last_epoch = epoch_start_time - quarter_epoch_time
        adjusted_time_last_epoch = time_last_epoch * (1 + previous_retarget / 100)
        adjusted_time_span = diff_seconds + adjusted_time_last_epoch
        adjusted_time_avg_secs = adjusted_time_span / 503
        difficulty_change = (_js_divide(block_seconds_target, adjusted_time_span / 504) - 1) * 100
    else:
        difficulty_change = (
            _js_divide(block_seconds_target, actual_timespan / (blocks_in_epoch + 1)) - 1
        ) * 100

    if difficulty_change > 300:
        difficulty_change = 300.0
    if difficulty_change < -75:
        difficulty_change = -75.0

    time_avg_ms = math.floor(time_avg_secs * 1000)
    adjusted_time_avg_ms = math.floor(adjusted_time_avg_secs * 1000)
    remaining_time_ms = remaining_blocks * adjusted_time_avg_ms
    estimated_retarget_ms = remaining_time_ms + now * 1000

    return RetargetProjection(
        progress_percent=float(progress_percent),
        difficulty_change=float(difficulty_change),
        estimated_retarget_time=estimated_retarget_ms / 1000,
        remaining_blocks=remaining_blocks,
        remaining_time=remaining_time_ms / 1000,
        previous_retarget=previous_retarget,
        previous_time=epoch_start_time,
        next_retarget_height=next_retarget_height,
        time_avg=time_avg_ms / 1000,
        adjusted_time_avg=adjusted_time_avg_ms / 1000,
        time_offset=0.0,
        expected_blocks=expected_blocks,
    )
