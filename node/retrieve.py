"""C-GET and C-MOVE sub-operations that send stored objects from their files as they are.

pynetdicom's retrieve services take one Dataset per C-STORE sub-operation and encode it again:
reading and re-encoding a 512x512 CT slice is about a quarter of each sub-operation. The
stored protected objects are already encoded, so when the peer accepted their transfer syntax
the sub-operation sends the file's data set bytes unchanged (pynetdicom's chunked sending). If
the peer accepted only another transfer syntax, the object is decoded (its pixels decompressed
when they are stored compressed) and pynetdicom converts it to what the peer accepted.

A C-MOVE proposes, for each SOP class it sends, the transfer syntaxes its objects are stored
in (compressed or Deflated), each in a context of its own, and one context of Explicit and
Implicit VR Little Endian: a peer that accepts only uncompressed objects gets them decompressed
(a Deflated one inflated). An association holds at most 128 contexts: when the SOP classes'
contexts are more, each class keeps its uncompressed context and the stored syntaxes are
proposed as far as room remains (the others are sent decompressed); SOP classes beyond 128
cannot be sent in one C-MOVE and count as failed sub-operations, in the Failed SOP Instance
UID List (``stegonode fetch`` splits its requests so that they fit).
"""

from __future__ import annotations

from pathlib import Path

from pydicom import Dataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import build_context, evt
from pynetdicom.presentation import PresentationContext

from .dicomnet import send_files_as_stored
from .query import Instance

MAX_CONTEXTS = 128  # presentation contexts one association holds (PS3.8: odd IDs 1..255)


class StoredObject(Dataset):
    """What a retrieve handler yields: a stored object's identity, sent from its file.

    The SOP Class and Instance UIDs are all pynetdicom reads from a sub-operation's data set
    (the instance UID goes into the Failed SOP Instance UID List when a sub-operation fails).
    """

    def __init__(self, instance: Instance, path: Path) -> None:
        super().__init__()
        self.SOPClassUID = instance.sop_class_uid
        self.SOPInstanceUID = instance.sop_instance_uid
        self.path = str(path)


def send_from_files(event: evt.Event) -> None:
    """Let the event's association send each :class:`StoredObject` from its file.

    An ``EVT_ESTABLISHED``/``EVT_CONN_OPEN`` handler: pynetdicom's services call the
    association's ``send_c_store``, so that is where a stored object becomes its file.
    """
    send_files_as_stored(event.assoc, lambda ds: ds.path if isinstance(ds, StoredObject) else None)


def move_contexts(found: list[Instance]) -> list[PresentationContext]:
    """What a C-MOVE proposes to its destination for the ``found`` instances."""
    syntaxes: dict[str, set[UID]] = {}
    for instance in found:
        stored = UID(instance.transfer_syntax or ExplicitVRLittleEndian)
        kept = syntaxes.setdefault(instance.sop_class_uid, set())
        if stored.is_compressed or stored.is_deflated:
            kept.add(stored)
    classes = list(syntaxes)[:MAX_CONTEXTS]
    contexts = [build_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian]) for sop_class in classes]
    as_stored = [build_context(sop_class, syntax) for sop_class in classes for syntax in sorted(syntaxes[sop_class])]
    return as_stored[: MAX_CONTEXTS - len(contexts)] + contexts
