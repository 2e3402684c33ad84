"""Capacity on the round-trip set: which carriers each image gets.

Every image carries the full identity in the header carrier; images of at least 256x256 whose
safe background (the usable region embed writes into: background less margin and guard) is at least 20 % carry the full identity
in the pixels, those of at least 128x128 with at least 10 % at least the core identity.
(test_roundtrip reveals every one of them from its pixels.) ``benchmarks/capacity.py`` prints
the table for these and ../shared/realdata, revealing each image from each carrier alone.
"""

from __future__ import annotations

import pydicom
import pytest

from stegonode.handlers.header import find_header_carrier, mac_key, open_header
from stegonode.handlers.protection import read_protection
from stegonode.handlers.seal import series_binding

from capacity import Row, measure
from images import REALDATA, ROUND_TRIP


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_capacity_requirement(name, protect_image, peer_keys):
    protected = protect_image(name)
    stego = protected.read()
    protection = read_protection(stego)
    envelope = find_header_carrier(stego, mac_key(peer_keys.embedding_key), series_binding(stego),
                                   protection.header_mac)
    from_header = open_header(envelope, peer_keys.certificate, peer_keys.rsa_private_key,
                              protection.header_certificate_id)
    assert [e.tag for e in from_header] == [e.tag for e in protected.instance_attributes]
    for element in from_header:
        assert element.value == protected.original[element.tag].value, element.keyword
    share = float(protected.usable.mean())
    row = Row(name, protected.cover_pixels.shape, share, 0, 0, 0, protected.report["carriers"],
              protected.report["pixel_attributes"], protected.report["pixel_attributes"], "all")
    assert row.meets_requirement, row.line()


TIGHT_REALDATA = ("mr_dcm4che_2.dcm", "pt_fodicom_1.dcm")  # 256x256 with 12 % safe; 128x128 PET


@pytest.mark.parametrize("name", TIGHT_REALDATA)
def test_pixel_carrier_on_a_tight_background_reads_back_alone(name, pipeline, peer_keys):
    """What the protection block claims the pixels carry, they deliver with the header stripped."""
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/realdata)")
    row = measure(pipeline, peer_keys, pydicom.dcmread(path), name)
    expected = "-" if row.pixel_attributes == "none" else row.pixel_attributes
    assert row.from_pixels == expected and row.from_header == "all", row.line()
    assert row.meets_requirement, row.line()  # mr_dcm4che_2: the core identity, from the pixels
