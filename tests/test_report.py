"""``stegonode report`` at CI size: one real CT, one noise draw, the real labelled images only."""

from __future__ import annotations

import math
import re
import subprocess

import pytest

from images import image_path
from nodes import STEGONODE

PNG = b"\x89PNG\r\n\x1a\n"
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = subprocess.run([STEGONODE, "report", "--images", str(image_path("693_UNCR.dcm")), "--out", str(out),
                             "--trials", "1", "--phantoms", "0"], capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    return out, (out / "report.md").read_text()


# Each section of the report: the seed's published figure, and the first cell of our row in a table.
SECTIONS = (("Table 3", "116.07", "693_UNCR.dcm"), ("Table 4", "115.58", "693_UNCR.dcm"),
            ("Table 5", "0.031", "693_UNCR.dcm"), ("Table 6", "0.3188", "693_UNCR.dcm"),
            ("Table 7", "131,524", "stegonode (ours), best PSNR: 693_UNCR"),
            ("Segmentation IoU", "0.9146", "labelled real images (held out)"),
            ("Seed 004", "50.75 %", "avalanche, one key bit flipped"),
            ("Seed 000", "77.18", "stegonode, mean of per-patch PSNR"))


def test_every_table_has_the_seed_beside_ours(report):
    _, text = report
    for heading, seed_figure, ours in SECTIONS:
        section = _section(text, heading)
        assert seed_figure in section, heading
        rows = [row for _, table in _tables(section) for row in table]
        assert rows, f"{heading}: no table"
        row = next((row for row in rows if row.split("|")[1].strip() == ours), None)
        assert row is not None, f"{heading}: no row {ours!r}"
        assert all(cell.strip() for cell in row.strip().strip("|").split("|")[1:3]), row
    assert "693_UNCR.dcm" in text and "## Provenance" in text and "SHA-256" in text


def test_tables_are_well_formed(report):
    _, text = report
    tables = _tables(text)
    assert len(tables) >= len(SECTIONS), f"{len(tables)} tables"
    for header, rows in tables:
        assert rows and all(_cells(row) == _cells(header) for row in rows), header


def test_psnr_is_stated_at_both_peaks(report):
    """693_UNCR stores 14 bits: its PSNR at 65535 is 20 log10(65535 / 16383) dB above the native one."""
    _, text = report
    row = next(line for line in text.splitlines() if line.startswith("| 693_UNCR.dcm | CT | 512 x 512 | 14 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    native, at_65535 = float(cells[6]), float(cells[7])
    assert at_65535 - native == pytest.approx(20 * math.log10(65535 / 16383), abs=0.011)
    assert cells[-1] == "yes"  # revealed from the stego image alone


def test_plots_and_html_are_written(report):
    out, text = report
    for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (out / name).read_bytes()[:8] == PNG, name
    assert {"seed002-table3.png", "seed002-table4.png", "seed002-table6.png", "kept-693_UNCR.png",
            "seed004-693_UNCR-histograms.png"} <= {p.name for p in out.glob("*.png")}
    html = (out / "report.html").read_text()
    separators = [line for line in text.splitlines() if SEPARATOR.match(line)]
    assert html.count("<table>") == len(separators) > 10
    assert '<img alt="decode success under noise" src="seed002-table6.png"' in html


def _section(text: str, heading: str) -> str:
    """From the heading containing ``heading`` to the next heading of its level or above."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading in line)
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next((i for i in range(start + 1, len(lines))
                if lines[i].startswith("#") and len(lines[i]) - len(lines[i].lstrip("#")) <= level), len(lines))
    return "\n".join(lines[start:end])


def _tables(text: str) -> list[tuple[str, list[str]]]:
    """Each Markdown table: its header line and its body rows."""
    lines = text.splitlines()
    tables = []
    for number, line in enumerate(lines):
        if line.startswith("|") and number + 1 < len(lines) and SEPARATOR.match(lines[number + 1]):
            body = lines[number + 2:]
            tables.append((line, body[:next((i for i, row in enumerate(body) if not row.startswith("|")), len(body))]))
    return tables


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1
