"""QR code symbols for Base45 text, vectorized: the module matrix the ``qrcode`` package draws,
in a fraction of its time.

The pixel payload is one alphanumeric segment, drawn with mask pattern 0 (the matrix is never
scanned optically, so choosing a mask buys nothing). ``qrcode`` spends its time in pure-Python
Reed-Solomon arithmetic and bit-by-bit buffers; here the data stream is a Python integer, the
error correction runs on all blocks at once with numpy, and the placement of the data modules is
computed once per version. The tables (block structure, capacities) and the function patterns
come from ``qrcode`` itself, so both draw the same symbol (tests/test_codecs.py compares them).
"""

from __future__ import annotations

import functools

import numpy as np
import qrcode
import qrcode.base
import qrcode.util

ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"  # the QR alphanumeric mode's set
_VALUE = {c: i for i, c in enumerate(ALPHANUMERIC)}
_MODE = 0b0010  # alphanumeric
_PADDING = (0xEC, 0x11)


def encode(text: str, level: int) -> np.ndarray:
    """QR module matrix (True = dark, no quiet zone) of ``text`` (QR alphanumeric characters) at
    error-correction ``level`` (a ``qrcode.constants.ERROR_CORRECT_*``), mask pattern 0, in
    the smallest version that holds it; ValueError if no version does."""
    version = smallest_version(len(text), level)
    symbol = _symbol(version, level)
    bits = _codewords_bits(_data_codewords(text, version, level), version, level)
    modules = symbol.template.copy()
    rows, cols = symbol.data_positions
    placed = np.zeros(rows.size, dtype=bool)  # remainder bits are 0
    placed[: bits.size] = bits
    modules[rows, cols] = placed ^ ((rows + cols) % 2 == 0)  # mask pattern 0
    return modules


def smallest_version(characters: int, level: int) -> int:
    for version in range(1, 41):
        if _stream_bits(characters, version) <= qrcode.util.BIT_LIMIT_TABLE[level][version]:
            return version
    raise ValueError(f"{characters} alphanumeric characters do not fit a QR code")


def _stream_bits(characters: int, version: int) -> int:
    count_bits = qrcode.util.length_in_bits(qrcode.util.MODE_ALPHA_NUM, version)
    return 4 + count_bits + 11 * (characters // 2) + 6 * (characters % 2)


def _data_codewords(text: str, version: int, level: int) -> bytes:
    """Mode, count, the characters in pairs, terminator, padding to the version's data codewords."""
    count_bits = qrcode.util.length_in_bits(qrcode.util.MODE_ALPHA_NUM, version)
    value, length = (_MODE << count_bits) | len(text), 4 + count_bits
    for i in range(0, len(text) - 1, 2):
        value = (value << 11) | (_VALUE[text[i]] * 45 + _VALUE[text[i + 1]])
        length += 11
    if len(text) % 2:
        value = (value << 6) | _VALUE[text[-1]]
        length += 6
    limit = qrcode.util.BIT_LIMIT_TABLE[level][version]
    terminator = min(limit - length, 4)
    length += terminator
    value <<= terminator + (-length % 8)
    length += -length % 8
    data = value.to_bytes(length // 8, "big")
    fill = limit // 8 - len(data)
    return data + bytes(_PADDING[i % 2] for i in range(fill))


def _codewords_bits(data: bytes, version: int, level: int) -> np.ndarray:
    """The final codeword sequence (data, then error correction, each interleaved across the
    blocks) as bits, most significant first."""
    blocks = qrcode.base.rs_blocks(version, level)
    sizes = np.array([block.data_count for block in blocks])
    ecc_count = blocks[0].total_count - blocks[0].data_count
    longest = int(sizes.max())
    # Block i's k-th codeword at [i, k]; short blocks (they come first) end one column early.
    present = np.arange(longest)[None, :] < sizes[:, None]
    codewords = np.zeros((len(blocks), longest), dtype=np.uint8)
    codewords[present] = np.frombuffer(data, np.uint8)
    # Right-aligned for the division: leading zeros leave a remainder unchanged.
    shift = longest - sizes
    right = np.zeros_like(codewords)
    right[np.arange(longest)[None, :] >= shift[:, None]] = codewords[present]
    ecc = _remainders(right, ecc_count)
    stream = np.concatenate([codewords.T[present.T], ecc.T.ravel()])
    return np.unpackbits(stream).astype(bool)


def _remainders(blocks: np.ndarray, ecc_count: int) -> np.ndarray:
    """Reed-Solomon error correction codewords of each row of ``blocks`` (GF(256), QR's
    generator), all rows at once."""
    table = _generator_products(ecc_count)
    remainder = np.zeros((len(blocks), ecc_count), dtype=np.uint8)
    for column in blocks.T:
        feedback = column ^ remainder[:, 0]
        remainder[:, :-1] = remainder[:, 1:]
        remainder[:, -1] = 0
        remainder ^= table[feedback]
    return remainder


@functools.cache
def _gf_tables() -> tuple[np.ndarray, np.ndarray]:
    exp = np.zeros(512, dtype=np.int64)
    value = 1
    for i in range(255):
        exp[i] = value
        value <<= 1
        if value & 0x100:
            value ^= 0x11D
    exp[255:510] = exp[:255]
    log = np.zeros(256, dtype=np.int64)
    log[exp[:255]] = np.arange(255)
    return exp, log


@functools.cache
def _generator_products(ecc_count: int) -> np.ndarray:
    """(256, ecc_count): the generator polynomial's coefficients (leading 1 dropped) times each
    field element."""
    exp, log = _gf_tables()
    generator = [1]
    for i in range(ecc_count):  # multiply by (x - a^i)
        nxt = generator + [0]
        for j, coefficient in enumerate(generator):
            if coefficient:
                nxt[j + 1] ^= int(exp[log[coefficient] + i])
        generator = nxt
    coefficients = np.array(generator[1:], dtype=np.int64)
    table = np.zeros((256, ecc_count), dtype=np.uint8)
    nonzero = coefficients != 0
    for f in range(1, 256):
        table[f, nonzero] = exp[log[f] + log[coefficients[nonzero]]]
    return table


def _drawn(version: int, level: int | None = None) -> list[list[bool | None]]:
    """qrcode's module grid of a symbol, None where data goes: the patterns the version fixes
    (finders with separators, alignment, timing), and with ``level`` also the format and version
    information (mask pattern 0)."""
    qr = qrcode.QRCode(version=version, box_size=1, border=0)
    side = qr.modules_count = 4 * version + 17
    qr.modules = [[None] * side for _ in range(side)]
    for row, col in ((0, 0), (side - 7, 0), (0, side - 7)):
        qr.setup_position_probe_pattern(row, col)
    qr.setup_position_adjust_pattern()
    qr.setup_timing_pattern()
    if level is not None:
        qr.error_correction = level
        qr.setup_type_info(False, 0)
        if version >= 7:
            qr.setup_type_number(False)
    return qr.modules


def _arrays(grid: list[list[bool | None]]) -> tuple[np.ndarray, np.ndarray]:
    """(set, dark) of a module grid: which modules are drawn, and which of them are dark."""
    return (np.array([[m is not None for m in row] for row in grid]),
            np.array([[bool(m) for m in row] for row in grid]))


@functools.cache
def fixed_patterns(side: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask, values) of the modules fixed by the version of a QR code ``side`` modules wide."""
    return _arrays(_drawn((side - 17) // 4))


class _Symbol:
    """What a version and level fix: the function patterns with format and version information
    (mask 0), and the data modules' positions in placement order."""

    def __init__(self, version: int, level: int) -> None:
        function, self.template = _arrays(_drawn(version, level))
        self.data_positions = _placement(function)


def _placement(function: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the non-function modules in the standard's zig-zag order: column
    pairs from the right, upwards then downwards, skipping the vertical timing pattern."""
    side = function.shape[0]
    rows: list[int] = []
    cols: list[int] = []
    upward = True
    col = side - 1
    while col > 0:
        if col == 6:
            col -= 1
        for row in (range(side - 1, -1, -1) if upward else range(side)):
            for c in (col, col - 1):
                if not function[row, c]:
                    rows.append(row)
                    cols.append(c)
        upward = not upward
        col -= 2
    return np.array(rows), np.array(cols)


@functools.cache
def _symbol(version: int, level: int) -> _Symbol:
    return _Symbol(version, level)
