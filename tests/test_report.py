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


def test_every_table_has_the_seed_beside_ours(report):
    _, text = report
    for heading, seed_figure in (("Table 3", "116.07"), ("Table 4", "115.58"), ("Table 5", "0.031"),
                                 ("Table 6", "0.3188"), ("Table 7", "131,524"), ("Segmentation IoU", "0.9146"),
                                 ("Seed 004", "50.75 %"), ("Seed 000", "77.18")):
        assert seed_figure in _section(text, heading), heading
    assert "693_UNCR.dcm" in text and "## Provenance" in text and "SHA-256" in text


def test_tables_are_well_formed(report):
    _, text = report
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("|") and number + 1 < len(lines) and SEPARATOR.match(lines[number + 1]):
            width = _cells(line)
            body = lines[number + 2:]
            rows = body[:next((i for i, row in enumerate(body) if not row.startswith("|")), len(body))]
            assert rows and all(_cells(row) == width for row in rows), line


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
    """From the heading containing ``heading`` to the next heading."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#") and heading in line)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end])


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line)) - 1
