"""A DICOM Segmentation (highdicom, BINARY) of the region protection kept bit-identical.

The kept-intact region of a protected instance is the complement of the region reveal reads the
message from (:func:`stegonode.handlers.reveal.usable_in`: the recorded segmenter's foreground
at the recorded levels, the margin, and whatever guard that function applies): one function
decides both, so the segmentation shows exactly what reveal treats as untouchable.

One multi-frame SEG covers a series: frames in source order, each referencing its source
instance (and frame), in the series' de-identified study, with the de-identification
attributes of its sources. Sources with a Frame of Reference, patient coordinates and a slice
thickness get highdicom's SEG with plane positions. The others (projection radiographs,
ultrasound, secondary captures, CT files that lack the Frame of Reference their IOD requires
or state no slice thickness) get a SEG whose frames are tied to their sources by reference
(Derivation Image Sequence), which the Segmentation IOD allows: plane positions and pixel
measures are conditional on the sources having them, and the sources' Frame of Reference is
kept where they have one. highdicom writes such a SEG for one source frame only, so it writes
the first frame and every further frame repeats it with its own source reference and pixels.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import highdicom as hd
import numpy as np
from highdicom.spatial import get_image_coordinate_system
from pydicom import Dataset
from pydicom.pixels import pack_bits
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from stegonode.dicom.colour import carrier_pixels
from stegonode.errors import InputError
from stegonode.handlers.protection import read_protection

from .deidentify import METHOD
from .encrypt import decrypted, is_encrypted
from .reveal import usable_in

SEGMENT_LABEL = "kept bit-identical"
SERIES_DESCRIPTION = "stegonode: region kept bit-identical"
SERIES_NUMBER = 9901
# What a SEG copies from its sources besides what highdicom copies (patient, study): the
# sources are de-identified, and dciodvfy wants the method on a SEG of such sources.
DEIDENTIFICATION = ("PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
                    "LongitudinalTemporalInformationModified")
SEG_METHOD = f"{METHOD}; identity in source images"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SEG_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://stegonode/kept-intact-segmentation")  # an IOD without a Frame of Reference


def software_version() -> str:
    """The installed stegonode version, as the SEG's software and algorithm version."""
    try:
        return f"stegonode {metadata.version('stegonode')}"
    except metadata.PackageNotFoundError:
        return "stegonode (not installed)"


def kept_region(ds: Dataset, pixel_cipher_key: bytes | None) -> np.ndarray:
    """Boolean (frames, rows, columns): True where reveal treats the pixels as untouchable.

    Protection kept this region, computed on the original, bit-identical; computed here on the
    stored image its edge can lie a few pixels further out where the segmenter sees the
    embedded background differently (``stegonode report`` counts such pixels per image).
    ``pixel_cipher_key`` decrypts encrypted pixels first (node.keys or peer.keys); None is enough
    for objects whose pixels are not encrypted.
    """
    protection = read_protection(ds)
    if is_encrypted(ds) and pixel_cipher_key is None:
        raise InputError("pixels are encrypted: the kept region needs the pixel-cipher key (--keys)")
    plain = decrypted(ds, pixel_cipher_key) if pixel_cipher_key is not None else ds
    return ~usable_in(plain, carrier_pixels(plain), protection)


@dataclass(frozen=True)
class Source:
    """One protected instance and its kept-intact mask, (frames, rows, columns)."""

    dataset: Dataset
    mask: np.ndarray


def series_uid_for(source_series: str) -> str:
    """The SEG series of a source series: the same UID for every SEG of that series (a 2.25 UID
    from a name-based UUID)."""
    return f"2.25.{uuid.uuid5(SEG_NAMESPACE, source_series).int}"


def kept_segmentation(sources: Sequence[Source], software_version: str) -> Dataset:
    """One BINARY SEG of the kept-intact masks of ``sources`` (instances of one series)."""
    if not sources:
        raise InputError("no protected instance to segment")
    first = sources[0].dataset
    if len({(s.dataset.Rows, s.dataset.Columns) for s in sources}) > 1:
        raise InputError("instances of different sizes: one segmentation needs one size")
    if len({str(s.dataset.SeriesInstanceUID) for s in sources}) > 1:
        raise InputError("instances of different series: one segmentation is for one series")
    ordered = sorted(sources, key=lambda s: (int(s.dataset.get("InstanceNumber") or 0), str(s.dataset.SOPInstanceUID)))
    arguments: dict[str, Any] = dict(
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[_segment(software_version)],
        series_instance_uid=series_uid_for(str(first.SeriesInstanceUID)),
        series_number=SERIES_NUMBER,
        sop_instance_uid=generate_uid(prefix=None),
        instance_number=1,
        manufacturer="stegonode",
        manufacturer_model_name="stegonode",
        software_versions=software_version,
        device_serial_number="0",
        series_description=SERIES_DESCRIPTION,
        content_label="KEPT",
        content_description="foreground plus margin, as reveal computes it on the image",
        omit_empty_frames=False,
        transfer_syntax_uid=ExplicitVRLittleEndian,
    )
    if _has_patient_coordinates(ordered):
        seg: Dataset = hd.seg.Segmentation(
            source_images=[s.dataset for s in ordered],
            pixel_array=np.concatenate([s.mask for s in ordered]).astype(np.uint8), **arguments)
    else:
        seg = _by_reference(ordered, arguments)
    for keyword in DEIDENTIFICATION:
        if keyword in first:
            setattr(seg, keyword, copy.deepcopy(first[keyword].value))
    if "DeidentificationMethod" in seg:  # the SEG carries no identity: its sources do
        seg.DeidentificationMethod = SEG_METHOD
    for element in list(seg):  # empty optional sequences highdicom copies from the study
        if element.VR == "SQ" and not element.value:
            del seg[element.tag]
    return seg


def _segment(software_version: str) -> hd.seg.SegmentDescription:
    return hd.seg.SegmentDescription(
        segment_number=1,
        segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.SpatialAndRelationalConcept,
        segmented_property_type=codes.DCM.ImageRegion,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="stegonode protection region", version=software_version,
            family=codes.cid7162.ArtificialIntelligence),
    )


def _has_patient_coordinates(sources: Sequence[Source]) -> bool:
    """All sources share a Frame of Reference and carry patient coordinates, and highdicom can
    take them together (single-frame instances, or one multi-frame instance)."""
    datasets = [s.dataset for s in sources]
    if len({str(d.get("FrameOfReferenceUID", "")) for d in datasets}) != 1 or "FrameOfReferenceUID" not in datasets[0]:
        return False
    if any(get_image_coordinate_system(d) is None for d in datasets):
        return False
    if any("PixelSpacing" in d and d.get("SliceThickness") is None for d in datasets):
        return False  # highdicom would write Pixel Measures without the slice thickness they need
    return len(datasets) == 1 or all(int(d.get("NumberOfFrames", 1)) == 1 for d in datasets)


def _by_reference(sources: Sequence[Source], arguments: dict) -> Dataset:
    """A SEG whose frames are tied to their sources by reference only (no Frame of Reference)."""
    first = sources[0].dataset
    proxy = _single_frame_proxy(first)
    seg = hd.seg.Segmentation(source_images=[proxy], pixel_array=sources[0].mask[:1].astype(np.uint8), **arguments)
    template = seg.PerFrameFunctionalGroupsSequence[0]
    frames, masks, instances = [], [], []
    for source in sources:
        ds = source.dataset
        multi = len(source.mask) > 1  # a one-frame reference applies to all frames: no frame number
        instances.append(_reference(ds))
        for index, mask in enumerate(source.mask):
            item = copy.deepcopy(template)
            reference = item.DerivationImageSequence[0].SourceImageSequence[0]
            reference.ReferencedSOPClassUID = ds.SOPClassUID
            reference.ReferencedSOPInstanceUID = ds.SOPInstanceUID
            if multi:
                reference.ReferencedFrameNumber = index + 1
            elif "ReferencedFrameNumber" in reference:
                del reference.ReferencedFrameNumber
            frames.append(item)
            masks.append(mask)
    seg.PerFrameFunctionalGroupsSequence = frames
    seg.NumberOfFrames = len(frames)
    seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence = instances
    seg.PatientOrientation = first.get("PatientOrientation", "")  # type 2C without patient coordinates
    if "FrameOfReferenceUID" in first:  # the sources' frame, where they have one
        seg.FrameOfReferenceUID = first.FrameOfReferenceUID
        seg.PositionReferenceIndicator = first.get("PositionReferenceIndicator", "")
    seg.PixelData = pack_bits(np.stack(masks).astype(np.uint8))
    return seg


def _reference(ds: Dataset) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def _single_frame_proxy(ds: Dataset) -> Dataset:
    """The header of ``ds`` as one frame of an IOD without a Frame of Reference, for highdicom
    to write the first frame from; every reference is rewritten to the real source after."""
    proxy = Dataset()
    for element in ds:
        if element.tag.group != 0x7FE0 and element.keyword not in ("NumberOfFrames", "PerFrameFunctionalGroupsSequence",
                                                                    "SharedFunctionalGroupsSequence"):
            proxy.add(copy.deepcopy(element))
    proxy.file_meta = copy.deepcopy(ds.file_meta)
    proxy.SOPClassUID = SECONDARY_CAPTURE
    spatial = ["FrameOfReferenceUID", "ImagePositionPatient", "ImageOrientationPatient"]
    if proxy.get("SliceThickness") is None:  # highdicom would write Pixel Measures that its reader refuses
        spatial.append("PixelSpacing")
    for keyword in spatial:
        if keyword in proxy:
            delattr(proxy, keyword)
    return proxy


# What a revealed instance gives its SEG back: the study, patient and frame of reference.
REIDENTIFIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate",
                "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName", "FrameOfReferenceUID")


def identity(revealed: Dataset) -> Dataset:
    """What :func:`reidentified` needs of a revealed instance (no pixels)."""
    kept = Dataset()
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", *REIDENTIFIED):
        if keyword in revealed:
            kept[keyword] = copy.deepcopy(revealed[keyword])
    return kept


def reidentified(seg: Dataset, originals: dict[str, Dataset]) -> Dataset:
    """The SEG of protected instances, for their revealed copies: every reference, the study,
    patient and frame of reference as in the originals (``originals``: protected SOP Instance
    UID -> :func:`identity` of its revealed dataset), the de-identification marks removed, and
    a new SOP Instance UID (it is another object). InputError if an instance was not revealed."""
    seg = copy.deepcopy(seg)

    def original(uid: str) -> Dataset:
        try:
            return originals[uid]
        except KeyError:
            raise InputError("the segmentation references an instance that was not revealed") from None

    references = [item for series in seg.ReferencedSeriesSequence for item in series.ReferencedInstanceSequence]
    references += [source for frame in seg.PerFrameFunctionalGroupsSequence
                   for derivation in frame.get("DerivationImageSequence", [])
                   for source in derivation.SourceImageSequence]
    for series in seg.ReferencedSeriesSequence:
        series.SeriesInstanceUID = original(series.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID).SeriesInstanceUID
    first = original(references[0].ReferencedSOPInstanceUID)
    for item in references:
        item.ReferencedSOPInstanceUID = original(item.ReferencedSOPInstanceUID).SOPInstanceUID
    for keyword in REIDENTIFIED:
        if keyword in first:
            seg[keyword] = copy.deepcopy(first[keyword])
        elif keyword in seg and keyword == "FrameOfReferenceUID":
            del seg[keyword]
    for keyword in DEIDENTIFICATION:
        if keyword in seg:
            delattr(seg, keyword)
    seg.SOPInstanceUID = generate_uid(prefix=None)
    seg.file_meta.MediaStorageSOPInstanceUID = seg.SOPInstanceUID
    return seg

