"""PS3.15 options, keyed date shifting, the residual-identity check and pseudonyms for patients
without an ID, on real objects (pydicom-data, ../shared/realdata)."""

from __future__ import annotations

import copy
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
from pydicom import Dataset
from pydicom.sequence import Sequence

from stegonode.dicom.dates import legal_age, shift_da, shift_dt
from stegonode.dicom.profile import SAFE_PRIVATE
from stegonode.dicom.pseudonyms import Pseudonymizer, patient_identity
from stegonode.errors import ConfigError, RefusedError
from stegonode.handlers.deidentify import deidentifier, is_bulk
from stegonode.handlers.pipeline import PipelineContext, build_pipeline, pseudonymizer
from stegonode.handlers.protect import protect_object
from stegonode.handlers.reveal import reveal
from stegonode.handlers.seal import CARRIERS
from stegonode.node import config as node_config

from images import REALDATA, dciodvfy_errors, image_path, realdata_images

SHIFT = tuple(node_config.DEFAULTS["handlers"]["deidentify"]["date_shift_days"])
PET = REALDATA / "pt_fodicom_1.dcm"


def _settings(options=None, **deidentify) -> dict:
    settings = copy.deepcopy(node_config.DEFAULTS["handlers"])
    if options is not None:
        settings["deidentify"]["options"] = list(options)
    settings["deidentify"].update(deidentify)
    return settings


def _deidentified(node_keys, ds: Dataset, options) -> Dataset:
    """``ds`` de-identified (a copy) with exactly ``options``."""
    out = copy.deepcopy(ds)
    PipelineContext(_settings(options), node_keys, CARRIERS).shared(deidentifier)(out)
    return out


def _pipeline(node_keys, options=None):
    settings = _settings(options)
    return build_pipeline(node_config.DEFAULTS["pipeline"]["handlers"], settings, node_keys)


def _codes(ds: Dataset) -> list[str]:
    return [str(code.CodeValue) for code in ds.DeidentificationMethodCodeSequence]


def _read(name: str) -> Dataset:
    path = Path(name) if "/" in name else image_path(name)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return pydicom.dcmread(path)


def _offset(node_keys, patient_id: str) -> int:
    return Pseudonymizer(node_keys.pseudonym_key).date_offset(patient_id, *SHIFT)


def _private(ds: Dataset) -> list[int]:
    return [int(e.tag) for e in ds if e.tag.is_private]


# -- one test per option: what it keeps is kept, what it changes is changed, the code is listed ---

@dataclass
class Case:
    option: str
    code: str
    image: str
    check: Callable[[Dataset, Dataset, Dataset, object], None]  # (original, with, without, node_keys)
    prepare: Callable[[Dataset], None] = field(default=lambda ds: None)


def _modified_dates(original, with_, without, node_keys):
    days = _offset(node_keys, original.PatientID)
    assert SHIFT[0] <= days <= SHIFT[1] and days != 0
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        assert with_.get(keyword) == shift_da(original.get(keyword), days) != original.get(keyword), keyword
        assert without.get(keyword) in (None, "", "19000101"), keyword  # removed, emptied or a dummy
    for keyword in ("StudyTime", "SeriesTime", "AcquisitionTime"):
        assert with_.get(keyword) == original.get(keyword), keyword
    assert (with_.LongitudinalTemporalInformationModified, without.LongitudinalTemporalInformationModified) == (
        "MODIFIED", "REMOVED")


def _full_dates(original, with_, without, node_keys):
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate", "StudyTime"):
        assert with_.get(keyword) == original.get(keyword), keyword
    assert not without.get("StudyDate")
    assert with_.LongitudinalTemporalInformationModified == "UNMODIFIED"


def _patient_characteristics(original, with_, without, node_keys):
    for keyword in ("PatientWeight", "PatientSize", "PatientSex", "PatientAge"):
        assert with_.get(keyword) == original.get(keyword), keyword
    assert "PatientWeight" not in without and "PatientAge" not in without and not without.get("PatientSex")


def _device_identity(original, with_, without, node_keys):
    for keyword in ("DeviceSerialNumber", "StationName"):
        assert with_.get(keyword) == original.get(keyword), keyword
        assert without.get(keyword) != original.get(keyword), keyword


def _retain_uids(original, with_, without, node_keys):
    for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        assert with_.get(keyword) == original.get(keyword), keyword
        assert without.get(keyword) != original.get(keyword), keyword


def _safe_private(original, with_, without, node_keys):
    safe = original.private_block(0x0043, "GEMS_PARM_01")[0x27]
    assert with_.private_block(0x0043, "GEMS_PARM_01")[0x27].value == safe.value
    assert with_.private_block(0x0019, "GEMS_ACQU_01")[0x23].value == original.private_block(0x0019, "GEMS_ACQU_01")[0x23].value
    unsafe = original.private_block(0x0043, "GEMS_PARM_01")[0x10].tag  # not in Table E.3.10-1
    assert unsafe not in with_ and len(_private(with_)) < len(_private(original))
    assert _private(without) == []


def _institution(original, with_, without, node_keys):
    assert with_.InstitutionName == original.InstitutionName != without.get("InstitutionName")


def _plant_descriptions(ds: Dataset) -> None:
    ds.SeriesDescription = "Chest compressedsamples CT1 follow-up"


def _clean_descriptors(original, with_, without, node_keys):
    assert with_.StudyDescription == original.StudyDescription  # free text kept
    assert with_.SeriesDescription == "Chest follow-up"  # the name parts taken out of it
    assert "StudyDescription" not in without and "SeriesDescription" not in without


def _plant_context(ds: Dataset) -> None:
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = "contrast given to SMITH, John at 10:00"
    item.ObservationDateTime = "20240102101500"
    ds.AcquisitionContextSequence = Sequence([item])
    ds.PatientName = "Smith^John"


def _clean_structured_content(original, with_, without, node_keys):
    (item,) = with_.AcquisitionContextSequence
    assert item.TextValue == "contrast given to at 10:00" and item.ValueType == "TEXT"
    assert item.ObservationDateTime != "20240102101500"  # dates in it are shifted too
    assert not without.get("AcquisitionContextSequence")


def _clean_graphics(original, with_, without, node_keys):
    assert with_[0x60003000].value == original[0x60003000].value
    assert with_[0x60000010].value == original[0x60000010].value  # the overlay's rows stay with it
    assert not [e for e in without if e.tag.group == 0x6000]


CASES = [
    Case("retain_longitudinal_modified_dates", "113107", "CT_small.dcm", _modified_dates),
    Case("retain_longitudinal_full_dates", "113106", "CT_small.dcm", _full_dates),
    Case("retain_patient_characteristics", "113108", str(PET), _patient_characteristics),
    Case("retain_device_identity", "113109", "MR_small.dcm", _device_identity),
    Case("retain_uids", "113110", "CT_small.dcm", _retain_uids),
    Case("retain_safe_private", "113111", "CT_small.dcm", _safe_private),
    Case("retain_institution_identity", "113112", "CT_small.dcm", _institution),
    Case("clean_descriptors", "113105", "CT_small.dcm", _clean_descriptors, _plant_descriptions),
    Case("clean_structured_content", "113104", "693_UNCR.dcm", _clean_structured_content, _plant_context),
    Case("clean_graphics", "113103", "MR-SIEMENS-DICOM-WithOverlays.dcm", _clean_graphics),
]


@pytest.mark.parametrize("case", CASES, ids=[case.option for case in CASES])
def test_each_option_keeps_what_it_keeps_and_is_listed(case, node_keys):
    original = _read(case.image)
    case.prepare(original)
    with_ = _deidentified(node_keys, original, [case.option])
    without = _deidentified(node_keys, original, [])
    assert _codes(with_) == sorted(["113100", case.code])
    assert _codes(without) == ["113100"]
    assert with_.PatientIdentityRemoved == "YES" and with_.PatientID != original.PatientID
    case.check(original, with_, without, node_keys)


def test_the_defaults_are_tcia_practice_and_listed_in_order(node_keys):
    out = _deidentified(node_keys, _read("CT_small.dcm"), None)
    assert _codes(out) == ["113100", "113104", "113105", "113107", "113108", "113109", "113111"]
    assert out.LongitudinalTemporalInformationModified == "MODIFIED"


@pytest.mark.parametrize(("text", "message"), [
    ('options = ["retain_everything"]', "unknown option 'retain_everything'"),
    ('options = ["retain_longitudinal_full_dates", "retain_longitudinal_modified_dates"]', "exclude each other"),
    ('options = ["clean_graphics", "clean_graphics"]', "each option may appear once"),
    ("date_shift_days = [-10, 10]", "includes 0"),
    ("date_shift_days = [-1, -10]", "lowest <= highest"),
    ('date_shift_days = [-10]', "two whole numbers"),
    ('options = "clean_graphics"', "must be list"),
])
def test_node_toml_refuses_wrong_options(tmp_path, text, message):
    path = tmp_path / "node.toml"
    path.write_text(f"[handlers.deidentify]\n{text}\n")
    with pytest.raises(ConfigError, match=message):
        node_config.load(path)


# -- keyed date shifting -----------------------------------------------------------------------

def test_date_and_datetime_values_shift_with_their_time_and_offset_kept():
    assert shift_da("20240301", -1) == "20240229" and shift_da("2024.03.01", 1) == "20240302"
    assert shift_dt("20240301235959.123456+0100", -1) == "20240229235959.123456+0100"
    assert shift_dt("202403", -40) == "202401" and shift_dt("2024", -400) == "2022"
    assert shift_da("not a date", 3) is None and shift_da("20241341", 3) is None
    assert (legal_age("22Y"), legal_age("045y"), legal_age("3 M"), legal_age("old")) == ("022Y", "045Y", "003M", None)


def test_same_patient_same_offset_across_pipelines_and_intervals_kept(node_keys):
    """Two studies of one patient protected by two pipelines (two receivers, or a restart)."""
    first, second = _read("CT_small.dcm"), _read("MR_small.dcm")
    for ds in (first, second):
        ds.PatientID, ds.PatientName = "P-1001", "Roe^Richard"
    first.StudyDate, second.StudyDate = "20200101", "20210315"
    originals = copy.deepcopy(first), copy.deepcopy(second)
    protect_object(first, _pipeline(node_keys))
    protect_object(second, _pipeline(node_keys))
    day = lambda value: datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8]))  # noqa: E731
    assert first.PatientID == second.PatientID
    shifted = day(second.StudyDate) - day(first.StudyDate)
    assert shifted == day(originals[1].StudyDate) - day(originals[0].StudyDate)
    offset = (day(first.StudyDate) - day(originals[0].StudyDate)).days
    assert offset == _offset(node_keys, "P-1001") != 0
    other = _deidentified(node_keys, _read("CT_small.dcm"), None)  # another patient, another offset
    assert other.StudyDate != first.StudyDate


def test_dates_shift_at_every_depth_and_reveal_restores_the_exact_header(node_keys, peer_keys, tmp_path):
    ds = _read("CT_small.dcm")
    item = Dataset()
    item.RadiopharmaceuticalStartDateTime = "20040119071500"
    item.RadiopharmaceuticalStartTime = "071500"
    inner = Dataset()
    inner.ObservationDateTime = "20040119"
    item.AcquisitionContextSequence = Sequence([inner])
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])
    ds.StudyDescription = "follow-up of CompressedSamples"
    block = ds.private_block(0x0099, "NQHeader", create=True)
    block.add_new(0x05, "LT", "Patient CompressedSamples CT1")
    original = copy.deepcopy(ds)
    protect_object(ds, _pipeline(node_keys))
    days = _offset(node_keys, original.PatientID)
    (stored_item,) = ds.RadiopharmaceuticalInformationSequence
    assert stored_item.RadiopharmaceuticalStartDateTime == shift_dt("20040119071500", days)
    assert stored_item.RadiopharmaceuticalStartTime == "071500"
    assert stored_item.AcquisitionContextSequence[0].ObservationDateTime == shift_dt("20040119", days)
    assert ds.private_block(0x0099, "NQHeader")[0x05].value == "Patient"
    ds.save_as(tmp_path / "p.dcm", enforce_file_format=True)
    restored = reveal(pydicom.dcmread(tmp_path / "p.dcm"), peer_keys).dataset
    for element in original:
        if element.tag.is_private and not _is_safe(original, element.tag):
            continue  # private attributes not kept are not carried (only safe ones come back)
        if element.keyword == "PixelData" or (is_bulk(element) and element.tag not in ds):
            continue  # binary bulk data the profile removes is not carried either
        assert element.tag in restored and restored[element.tag] == element, element.keyword or str(element.tag)
    assert restored.private_block(0x0099, "NQHeader")[0x05].value == "Patient CompressedSamples CT1"


def _is_safe(ds: Dataset, tag) -> bool:
    if tag.element < 0x0100:
        return any(creator == str(ds[tag].value) for creator, _, _ in SAFE_PRIVATE)
    creator = ds.get((tag.group << 16) | (tag.element >> 8))
    return creator is not None and (str(creator.value), tag.group, tag.element & 0xFF) in SAFE_PRIVATE


def _suv_factor(ds: Dataset) -> float:
    """SUVbw per stored-value unit: weight / decayed dose (injection date-time from the
    radiopharmaceutical's DT, else the series date and the start time) times the rescale slope."""
    (drug,) = ds.RadiopharmaceuticalInformationSequence
    start = drug.get("RadiopharmaceuticalStartDateTime") or f"{ds.SeriesDate}{drug.RadiopharmaceuticalStartTime}"
    parse = lambda text: datetime.datetime.strptime(text.split(".")[0][:14], "%Y%m%d%H%M%S")  # noqa: E731
    elapsed = (parse(f"{ds.AcquisitionDate}{ds.AcquisitionTime}") - parse(start)).total_seconds()
    dose = float(drug.RadionuclideTotalDose) * 2 ** (-elapsed / float(drug.RadionuclideHalfLife))
    return float(ds.RescaleSlope) * float(ds.PatientWeight) * 1000 / dose


def test_suv_of_a_protected_pet_equals_the_original(node_keys):
    ds = _read(str(PET))
    (drug,) = ds.RadiopharmaceuticalInformationSequence
    drug.RadiopharmaceuticalStartDateTime = f"{ds.SeriesDate}{drug.RadiopharmaceuticalStartTime}"
    original = copy.deepcopy(ds)
    protect_object(ds, _pipeline(node_keys))
    assert ds.AcquisitionDate != original.AcquisitionDate  # dates moved
    assert _suv_factor(ds) == _suv_factor(original)
    plain = copy.deepcopy(original)  # also without the sequence's DT: series date + start time
    del plain.RadiopharmaceuticalInformationSequence[0].RadiopharmaceuticalStartDateTime
    protected = copy.deepcopy(plain)
    protect_object(protected, _pipeline(node_keys))
    assert _suv_factor(protected) == _suv_factor(plain)


# -- patients without an ID --------------------------------------------------------------------

def test_empty_patient_ids_never_merge_patients(node_keys):
    def pseudonym(name: str, patient_id: str = "", birth: str = "19700101", study: str | None = None,
                  series: str | None = None) -> str:
        ds = _read("CT_small.dcm")
        ds.PatientID, ds.PatientName, ds.PatientBirthDate = patient_id, name, birth
        if study is not None:
            ds.StudyInstanceUID = study
        if series is not None:
            ds.SeriesInstanceUID = series
        return str(_deidentified(node_keys, ds, None).PatientID)

    assert pseudonym("Doe^Jane") != pseudonym("Roe^Richard")
    assert pseudonym("Doe^Jane") == pseudonym("DOE^JANE ")  # same name and birth date: one patient
    assert pseudonym("Doe^Jane") != pseudonym("Doe^Jane", birth="19800101")
    assert pseudonym("", study="1.2.3.4") != pseudonym("", study="1.2.3.5")  # apart per study
    assert pseudonym("", study="1.2.3.4") == pseudonym("", study="1.2.3.4")
    # no Study Instance UID either: apart per series, as their generated Study UIDs are
    assert pseudonym("", study="", series="1.2.3.6") != pseudonym("", study="", series="1.2.3.7")
    assert pseudonym("", study="", series="1.2.3.6") == pseudonym("", study="", series="1.2.3.6")
    assert pseudonym("Doe^Jane", patient_id="42") == pseudonym("Roe^Richard", patient_id="42")  # the ID decides


# -- the residual-identity check ---------------------------------------------------------------

NAME, PID, OTHER_ID, INSURANCE, ACCESSION, BIRTH = (
    "Doe-Smith^Jane^Alice", "PID7734521", "MRN99887766", "INS55501", "ACC20240517", "19610312")
FORBIDDEN = ("jane", "alice", "doe", "smith", PID.lower(), OTHER_ID.lower(), INSURANCE.lower(),
             ACCESSION.lower(), "19610312", "1961-03-12", "12/03/1961", "03/12/1961", "12.03.1961",
             "march 12, 1961", "12 mar 1961")


def _text_item(text: str, **extra: str) -> Dataset:
    item = Dataset()
    item.ValueType = "TEXT"
    item.TextValue = text
    for keyword, value in extra.items():
        setattr(item, keyword, value)
    return item


def _planted() -> tuple[Dataset, int, int]:
    """A real CT with the identity planted in 30+ places the default options keep (and a few the
    profile removes anyway); the number of places and of occurrences planted where kept."""
    ds = _read("693_UNCR.dcm")
    ds.PatientName, ds.PatientID, ds.AccessionNumber, ds.PatientBirthDate = NAME, PID, ACCESSION, BIRTH
    ds.OtherPatientIDs = OTHER_ID
    other = Dataset()
    other.PatientID = INSURANCE
    ds.OtherPatientIDsSequence = Sequence([other])
    plants = [  # (keyword, value, occurrences)
        ("StudyDescription", "CT chest for jane DOE-SMITH", 2),
        ("SeriesDescription", "smith jane alice follow-up", 3),
        ("ImageComments", "Patient Alice Doe, born 12/03/1961", 3),
        ("ProtocolName", f"{PID} protocol", 1),
        ("PerformedProcedureStepDescription", f"acc {ACCESSION.lower()}", 1),
        ("AdditionalPatientHistory", "born March 12, 1961; Jane reports pain", 2),
        ("AcquisitionComments", f"jane doe-smith {PID.lower()}", 3),
        ("PatientComments", f"mrn {OTHER_ID}, insurance {INSURANCE}", 2),
        ("RequestedProcedureDescription", "CT for Smith, Jane", 2),
        ("ReasonForStudy", "1961-03-12 birthday check of ALICE", 2),
        ("StudyComments", "12 Mar 1961 / 12.03.1961", 2),
        ("DerivationDescription", "derived for doe", 1),  # cleaned, then protect writes its own
        ("VisitComments", "Visit of jane", 1),
        ("ReasonForTheRequestedProcedure", "pain, ALICE DOE", 2),
        ("ContrastBolusAgent", "Omnipaque for DOE", 1),
        ("CommentsOnThePerformedProcedureStep", f"done, acc. {ACCESSION}", 1),
        ("FrameComments", f"frame of {PID}", 1),
        ("ImagingServiceRequestComments", "call Jane at home", 1),
        ("MedicalAlerts", "alert: Smith allergic", 1),
        ("AdmittingDiagnosesDescription", "Doe-Smith: fracture", 1),
    ]
    places, count = 0, 0
    for keyword, value, hits in plants:
        setattr(ds, keyword, value)
        places, count = places + 1, count + hits
    ds.BodyPartExamined = "CHEST"  # no identity: left as it is
    # structured content, nested three deep (Acquisition Context, and SR-style Content Sequence)
    deepest = _text_item(f"accession {ACCESSION} for ALICE", ObservationDateTime="20040119")
    middle = _text_item("Jane's scan", PersonName="Doe^Jane")  # the profile replaces Person Name
    middle.ContentSequence = Sequence([deepest])
    ds.AcquisitionContextSequence = Sequence([
        _text_item(f"{OTHER_ID} verified"), middle, _text_item("Smith-Doe family (03/12/1961)")])
    places, count = places + 4, count + 1 + 1 + 2 + 3  # 3: Smith, Doe and the date in the last item
    finding = _text_item("Impression: no change since 1961-03-12 for Smith")
    finding.ContentSequence = Sequence([_text_item(f"dictated for {PID} / {INSURANCE}")])
    ds.ContentSequence = Sequence([_text_item("Report of Jane Doe-Smith"), finding])
    places, count = places + 3, count + 2 + 2 + 2
    # kept (safe) private attributes: a GE text, NQ texts, a Hologic binary value
    ge = ds.private_block(0x0043, "GEMS_PARM_01", create=True)
    ge.add_new(0x27, "SH", "JANE")
    nq = ds.private_block(0x0099, "NQHeader", create=True)
    nq.add_new(0x05, "LT", f"Doe, Jane {BIRTH} {PID}")
    nq.add_new(0x20, "SH", "alice")
    hologic = ds.private_block(0x7E01, "HOLOGIC, Inc.", create=True)
    hologic.add_new(0x12, "OB", b"header for DOE-SMITH JANE\0")
    places, count = places + 4, count + 1 + 4 + 1 + 2
    # and places the profile removes anyway (not counted: nothing of them is left to search)
    ds.OperatorsName = "Doe^Jane"
    unsafe = ds.private_block(0x0029, "SOME VENDOR", create=True)
    unsafe.add_new(0x10, "LO", "Jane Doe-Smith")
    return ds, places, count


def _searchable_text(ds: Dataset) -> str:
    """Every value of the stored object but the pixels, the sealed carriers and stegonode's own
    blocks (ciphertext and keyed hex, which can hold any letters by chance), lower case."""
    ds = copy.deepcopy(ds)
    for keyword in ("PixelData", "EncryptedAttributesSequence"):
        if keyword in ds:
            delattr(ds, keyword)
    for group in (0x0011, 0x0013):
        for element in [e for e in ds.group_dataset(group)]:
            del ds[element.tag]
    parts = []

    def walk(data: Dataset) -> None:
        for element in data:
            if element.VR == "SQ":
                for item in element.value:
                    walk(item)
            elif isinstance(element.value, bytes):
                parts.append(element.value.decode("latin-1"))
            else:
                parts.append(str(element.value))
    walk(ds)
    return "\n".join(parts).lower()


def test_residual_check_removes_identity_planted_in_30_places(node_keys, peer_keys, tmp_path):
    ds, places, planted = _planted()
    assert places >= 30
    original = copy.deepcopy(ds)
    instance = protect_object(ds, _pipeline(node_keys)).instance
    assert instance.report["identity_residues_removed"] == planted
    ds.save_as(tmp_path / "stored.dcm", enforce_file_format=True)
    stored = pydicom.dcmread(tmp_path / "stored.dcm")
    text = _searchable_text(stored)
    found = [value for value in FORBIDDEN if value in text]
    assert found == [], found
    # the free text around the identity is kept
    assert stored.StudyDescription == "CT chest for"
    assert stored.SeriesDescription == "follow-up"
    assert stored.AdditionalPatientHistory == "born reports pain"
    assert stored.ContentSequence[1].TextValue == "Impression: no change since for"
    assert stored.BodyPartExamined == "CHEST"
    assert not [e for e in stored.group_dataset(0x7E01) if e.VR == "OB"]  # a binary value with a hit goes
    # and reveal restores every planted value exactly
    restored = reveal(stored, peer_keys).dataset
    for keyword in ("StudyDescription", "ImageComments", "AcquisitionContextSequence", "PatientComments"):
        assert restored[keyword] == original[keyword], keyword
    assert restored.private_block(0x0099, "NQHeader")[0x05].value == f"Doe, Jane {BIRTH} {PID}"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "693_UNCR.dcm", "bad_sequence.dcm",
                                  *(str(path) for path in realdata_images())])
def test_dciodvfy_finds_no_new_errors_with_the_default_options(name, node_keys, tmp_path):
    """With the default options; an object stating burned-in annotation, which the default
    refuses (checked here), with only that allowed, so what it would store is validated too."""
    ds = _read(name)
    pipeline = _pipeline(node_keys)
    if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        with pytest.raises(RefusedError, match="BurnedInAnnotation YES"):
            pipeline.admit(ds)
        settings = _settings(allow_burned_in_annotation=True)
        pipeline = build_pipeline(node_config.DEFAULTS["pipeline"]["handlers"], settings, node_keys)
    ds.save_as(tmp_path / "original.dcm", enforce_file_format=True)
    protect_object(ds, pipeline)
    ds.save_as(tmp_path / "protected.dcm", enforce_file_format=True)
    new = dciodvfy_errors(tmp_path / "protected.dcm") - dciodvfy_errors(tmp_path / "original.dcm")
    assert not new, new


def test_retain_uids_through_the_pipeline_binds_and_reveals(node_keys, peer_keys):
    """With Retain UIDs the seal binds to the kept UIDs, and the receivers name jobs by them."""
    ds = _read("CT_small.dcm")
    original = copy.deepcopy(ds)
    protect_object(ds, _pipeline(node_keys, [*node_config.DEFAULTS["handlers"]["deidentify"]["options"], "retain_uids"]))
    assert (ds.SOPInstanceUID, ds.StudyInstanceUID) == (original.SOPInstanceUID, original.StudyInstanceUID)
    assert ds.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
    revealed = reveal(ds, peer_keys)
    assert revealed.attributes.PatientID == original.PatientID
    settings = _settings([*node_config.DEFAULTS["handlers"]["deidentify"]["options"], "retain_uids"])
    assert pseudonymizer(settings, node_keys).uid(original.SOPInstanceUID) == original.SOPInstanceUID


def test_structured_report_content_is_kept_dated_and_cleaned(node_keys):
    """An SR's content tree (the node itself refuses SR objects today; whole studies will bring
    them): kept by Clean Structured Content, its date-times shifted, the identity cut out."""
    original = _read("test-SR.dcm")
    original.PatientName, original.PatientBirthDate = "Quinn^Harriet", "19750602"
    original.ContentSequence[-1].TextValue = "Harriet QUINN (born 2 June 1975) seen today"
    out = _deidentified(node_keys, original, None)
    days = _offset(node_keys, patient_identity(original))  # no Patient ID: name and birth date
    assert not original.PatientID
    assert len(out.ContentSequence) == len(original.ContentSequence)
    assert out.ContentSequence[-1].TextValue == "(born ) seen today"
    assert out.ContentDate == shift_da(original.ContentDate, days)
    verifying = out.get("VerifyingObserverSequence") or []
    assert all(item.VerificationDateTime == shift_dt(str(before.VerificationDateTime), days)
               for item, before in zip(verifying, original.VerifyingObserverSequence, strict=False))  # none kept: nothing to compare
    assert "113104" in _codes(out)
