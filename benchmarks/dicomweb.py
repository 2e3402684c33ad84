#!/usr/bin/env python
"""DICOMweb speed: QIDO-RS search latency over a large index, WADO-RS throughput against Orthanc.

1. QIDO-RS: a real ``stegonode serve`` whose index holds ``--studies`` studies (10,000; one
   instance each, rows written straight into the index as the workers would) answers study
   searches: a study-list page (limit 100), an exact Patient ID, a wildcard, a date range, a
   Modalities In Study match and a fuzzy person name; median and 95th percentile over
   ``--rounds`` requests each, on one kept-alive connection.
2. WADO-RS: a ``--series``-instance CT series (200) sent by storescu and protected by the node;
   the same stored (protected) files uploaded into a plain Orthanc with Debian's DICOMweb plugin.
   The series is retrieved from both, as stored (``transfer-syntax=*``) and in the default
   (Explicit VR Little Endian), rounds interleaved: MB/s of the multipart body.

Two cores shared with other work: the figures are noisy; the ratio within one run is the
comparison. Run from the repository root:

    .venv/bin/python benchmarks/dicomweb.py [--studies 10000] [--series 200] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pydicom.uid import generate_uid  # noqa: E402

from stegonode.node.index import Index  # noqa: E402
from stegonode.node.index import instances as table  # noqa: E402

from nodes import NodeProcess, free_port, plain_orthanc, storescu, write_series  # noqa: E402

TOKEN = "benchmark-token-0123456789abcdefghijkl"
STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DEFAULT = 'multipart/related; type="application/dicom"'


def fill_index(database: str, studies: int) -> None:
    """``studies`` one-instance studies in the index (synthetic rows, pseudonymous values)."""
    index = Index(database)
    now = time.time()
    rows = []
    for number in range(studies):
        study, series, instance = generate_uid(), generate_uid(), generate_uid()
        rows.append({
            "PatientID": f"SN{number:08d}", "PatientName": f"SN^P{number:08d}", "PatientBirthDate": "",
            "PatientSex": "O", "StudyInstanceUID": study, "StudyDate": f"20{number % 25:02d}0{1 + number % 9}15",
            "StudyTime": "120000", "AccessionNumber": "", "StudyID": "", "StudyDescription": "bench",
            "ReferringPhysicianName": "", "SeriesInstanceUID": series,
            "Modality": ("CT", "MR", "CR", "US")[number % 4], "SeriesNumber": "1", "SeriesDescription": "",
            "SOPInstanceUID": instance, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "InstanceNumber": "1",
            "TransferSyntaxUID": "1.2.840.10008.1.2.4.80", "path": f"stored/{instance}.dcm",
            "stored_at": now + number * 1e-3,
        })
    with index.engine.begin() as db:
        db.execute(table.insert(), rows)
    index.close()


def qido(port: int, rounds: int) -> None:
    searches = {
        "study list page (limit=100)": {"limit": "100"},
        "PatientID exact": {"PatientID": "SN00004321"},
        "PatientID wildcard SN0000432*": {"PatientID": "SN0000432*"},
        "StudyDate range (one year)": {"StudyDate": "20070101-20071231", "limit": "100"},
        "ModalitiesInStudy=MR (limit 100)": {"ModalitiesInStudy": "MR", "limit": "100"},
        "PatientName fuzzy p0000432": {"PatientName": "p0000432", "fuzzymatching": "true"},
    }
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/dicom+json"}
    print(f"\nQIDO-RS /studies latency, {rounds} requests each (ms):")
    print(f"  {'search':36} {'matches':>8} {'median':>8} {'p95':>8}")
    for name, parameters in searches.items():
        times, matches = [], 0
        for _ in range(rounds):
            start = time.perf_counter()
            connection.request("GET", "/dicomweb/studies?" + urlencode(parameters), headers=headers)
            body = connection.getresponse().read()
            times.append(1000 * (time.perf_counter() - start))
            matches = len(json.loads(body))
        times.sort()
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"  {name:36} {matches:8d} {statistics.median(times):8.1f} {p95:8.1f}")
    connection.close()


def fetch(url: str, accept: str, token: str | None) -> tuple[int, float, str]:
    """Bytes of the body, seconds, and the first part's transfer syntax."""
    headers = {"Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    start = time.perf_counter()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=600) as answer:
        body = answer.read()
    seconds = time.perf_counter() - start
    head = body[:400].decode("latin-1")
    syntax = head.split("transfer-syntax=", 1)[1].split("\r\n", 1)[0].strip('"; ') if "transfer-syntax=" in head else "(not named)"
    return len(body), seconds, syntax


def wado(node: NodeProcess, web_port: int, work: Path, count: int, rounds: int) -> None:
    files = write_series(work / "series", count)
    result = storescu(node.port, files)
    assert result.returncode == 0, result.stderr
    node.wait_idle(count, timeout=1800)
    (study, series) = node.query('SELECT "StudyInstanceUID", "SeriesInstanceUID" FROM instances '
                                 'WHERE "StudyDescription" != \'bench\' LIMIT 1')[0]
    paths = [node.data / key for (key,) in node.query(
        f"SELECT path FROM instances WHERE \"SeriesInstanceUID\" = '{series}'")]
    orthanc, orthanc_port = plain_orthanc(work / "orthanc")
    try:
        for path in paths:  # the same protected objects, as the node stored them
            request = urllib.request.Request(f"http://127.0.0.1:{orthanc_port}/instances", path.read_bytes())
            urllib.request.urlopen(request, timeout=120).read()
        ours = f"http://127.0.0.1:{web_port}/dicomweb/studies/{quote(study)}/series/{quote(series)}"
        theirs = f"http://127.0.0.1:{orthanc_port}/dicom-web/studies/{quote(study)}/series/{quote(series)}"
        results: dict[tuple[str, str], list[tuple[int, float, str]]] = {}
        for _ in range(rounds):  # interleaved: both servers see the same machine load
            for mode, accept in (("as stored", STORED), ("default", DEFAULT)):
                results.setdefault(("stegonode", mode), []).append(fetch(ours, accept, TOKEN))
                results.setdefault(("Orthanc", mode), []).append(fetch(theirs, accept, None))
        print(f"\nWADO-RS series retrieval, {len(paths)} instances, {rounds} rounds interleaved (median):")
        print(f"  {'server':10} {'request':10} {'transfer syntax sent':26} {'MB':>8} {'s':>7} {'MB/s':>8}")
        for (server, mode), runs in results.items():
            size, _, syntax = runs[0]
            seconds = statistics.median(s for _, s, _ in runs)
            print(f"  {server:10} {mode:10} {syntax:26} {size / 1e6:8.1f} {seconds:7.2f} {size / 1e6 / seconds:8.1f}")
    finally:
        orthanc.terminate()
        orthanc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="500 studies, a 10-instance series, 2 rounds (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.studies, args.series, args.rounds = 500, 10, 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        web_port = free_port()
        node = NodeProcess(work / "node", tables={
            "web": {"enabled": True, "port": web_port, "login": "token"}, "dicomweb": {"token": TOKEN},
            "handlers.segment": {"segmenter": "classical"}})
        node.start()
        try:
            fill_index(node.database, args.studies)
            print(f"index: {args.studies} studies")
            qido(web_port, max(20, args.rounds * 4))
            wado(node, web_port, work, args.series, args.rounds)
        finally:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
