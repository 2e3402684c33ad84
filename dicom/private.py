"""stegonode's private blocks: one JSON document per block, in a UT element of an odd group."""

from __future__ import annotations

import json
from typing import Any

from pydicom import Dataset
from pydicom.tag import Tag

DOCUMENT_ELEMENT = 0x01  # the block's first element holds the JSON document


def write_document(ds: Dataset, group: int, creator: str, document: dict[str, Any]) -> None:
    """Store ``document`` as compact JSON in the block of ``creator`` (created if needed)."""
    block = ds.private_block(group, creator, create=True)
    block.add_new(DOCUMENT_ELEMENT, "UT", json.dumps(document, separators=(",", ":")))


def read_document(ds: Dataset, group: int, creator: str) -> Any:
    """The decoded JSON of the block; None if there is no such block or element.

    Raises ValueError when the element is there but does not hold JSON.
    """
    try:
        element = ds.private_block(group, creator)[DOCUMENT_ELEMENT]
    except KeyError:
        return None
    try:
        return json.loads(element.value)
    except TypeError:
        raise ValueError("private block element is not text") from None


def remove_block(ds: Dataset, group: int, creator: str) -> None:
    """Delete the block of ``creator`` (its creator element and every element), if present."""
    try:
        block = ds.private_block(group, creator)
    except KeyError:
        return
    creator_tag = Tag(group, block.block_start >> 8)
    for tag in [e.tag for e in ds.group_dataset(group)]:
        if tag == creator_tag or tag.element & 0xFF00 == block.block_start:
            del ds[tag]
