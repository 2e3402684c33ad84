"""The console an administrator runs the node from, in Debian's Chromium (Playwright): a real
``stegonode serve`` that received the realdata images (one refused: burned-in annotation), an
object a worker quarantines, and a failed negotiation; a DCMTK storescp is the [[peers]]
destination. Screenshots at 1280 and 390 px wide: build/web/console-*.png."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames
from pynetdicom import AE

from images import image_path
from nodes import DCMTK_ENV, PATIENT, NodeProcess, free_port, storescu, wait_listening

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: scripts/setup.sh --test")

CHROMIUM = "/usr/bin/chromium"
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"
SHOTS = Path(__file__).resolve().parents[1] / "build" / "web"
WIDTHS = {"desktop": 1280, "phone": 390}
# storescu's option proposing each compressed transfer syntax of the realdata images
PROPOSE = {"1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.50": "-xy",
           "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.5": "-xr"}


def _identified(source: Path, target: Path) -> Path:
    """A copy of ``source`` carrying the test identity (tests/nodes.py PATIENT)."""
    ds = pydicom.dcmread(source)
    for keyword, value in PATIENT.items():
        setattr(ds, keyword, value)
    ds.save_as(target)
    return target


@pytest.fixture(scope="module")
def sent(tmp_path_factory) -> list[Path]:
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA} absent")
    folder = tmp_path_factory.mktemp("originals")
    files = [_identified(path, folder / path.name) for path in sorted(REALDATA.glob("*.dcm"))]
    ds = pydicom.dcmread(image_path("693_J2KR.dcm"))  # its JPEG 2000 stream cut: quarantined
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 4]])
    ds.save_as(folder / "undecodable.dcm")
    return [*files, _identified(folder / "undecodable.dcm", folder / "undecodable.dcm")]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """A DCMTK storescp: the peer the console sends to."""
    folder = tmp_path_factory.mktemp("archive")
    port = free_port()
    process = subprocess.Popen(["/usr/bin/storescp", "-aet", "ARCHIVE", "-od", str(folder), str(port)],
                               env=DCMTK_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port)
    yield {"port": port, "folder": folder}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def node(tmp_path_factory, sent, archive):
    port = free_port()
    running = NodeProcess(
        tmp_path_factory.mktemp("node"), peers=[{"ae_title": "ARCHIVE", "host": "127.0.0.1", "port": archive["port"]}],
        tables={"web": {"enabled": True, "port": port, "login": "none"},
                "handlers.segment": {"segmenter": "classical"}, "audit": {"file": "audit.log"}})
    running.start()
    running.url = f"http://127.0.0.1:{port}"
    by_syntax: dict[str, list[Path]] = {}
    for path in sent:  # storescu proposes a compressed syntax only when told which
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
        by_syntax.setdefault(PROPOSE.get(syntax, ""), []).append(path)
    for option, paths in by_syntax.items():
        result = storescu(running.port, paths, *([option] if option else []), "-nh")  # -nh: on past a refusal
        assert result.stdout.count("Received Store Response") + result.stderr.count("Received Store Response") \
            == len(paths), result.stderr
    ae = AE(ae_title="ODDCALLER")  # a negotiation that fails: a SOP class the node does not know
    ae.add_requested_context("1.2.826.0.1.3680043.9.7433.1.1")
    association = ae.associate("127.0.0.1", running.port, ae_title="STEGONODE")
    if association.is_established:
        association.abort()
    running.wait_idle(len(sent) - 1, timeout=900)  # the ultrasound was refused: no job
    yield running
    running.stop()
    log = running.log.read_text()
    assert "Traceback" not in log
    for value in PATIENT.values():
        assert value not in log


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run scripts/setup.sh --test")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def tabs(browser):
    contexts = {name: browser.new_context(accept_downloads=True, viewport={"width": width, "height": 900})
                for name, width in WIDTHS.items()}
    yield {name: context.new_page() for name, context in contexts.items()}
    for context in contexts.values():
        context.close()


def _fits(tab) -> None:
    """The document is no wider than the viewport (nothing to scroll sideways but tables that
    scroll in their own box)."""
    width = tab.evaluate("() => document.documentElement.scrollWidth")
    assert width <= tab.viewport_size["width"], f"{tab.url} is {width} px wide"


def _visit(tabs, url: str, name: str) -> str:
    """Open ``url`` at both widths, check the phone width fits, screenshot both; the HTML."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    html = ""
    for width, tab in tabs.items():
        response = tab.goto(url)
        assert response is not None and response.status == 200, url
        tab.wait_for_load_state("load")
        tab.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=120_000)
        tab.screenshot(path=SHOTS / f"console-{name}-{width}.png", full_page=True)
        if width == "phone":
            _fits(tab)
        html = tab.content()
    return html


def _identifying(sent: list[Path]) -> set[str]:
    values = set(PATIENT.values())
    for path in sent:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        values |= {str(ds.get(k)) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID") if k in ds}
    return values


def _image_loaded(tab, selector: str) -> None:
    script = "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }"
    tab.wait_for_function(script, arg=selector, timeout=60_000)


def test_jobs_show_refusals_quarantine_and_negotiations(node, tabs, sent):
    tab = tabs["desktop"]
    html = _visit(tabs, f"{node.url}/jobs", "jobs")
    rows = tab.query_selector_all("#jobs tbody tr")
    outcomes = [row.query_selector(".outcome").inner_text() for row in rows]
    assert sum(o.startswith("stored") for o in outcomes) == len(sent) - 2
    refused = tab.query_selector("tr.outcome-refused")
    assert "0xC000" in refused.inner_text() and "BurnedInAnnotation YES" in refused.inner_text()
    assert "allow_burned_in_annotation" in refused.inner_text()  # the whole reason, not 64 characters
    assert "Ultrasound" in refused.inner_text() and "STORESCU" in refused.inner_text()
    quarantined = tab.query_selector("tr.outcome-quarantined")
    assert "pixel data does not decode" in quarantined.inner_text()
    negotiation = tab.query_selector("tr.outcome-negotiation-failed")
    assert "ODDCALLER" in negotiation.inner_text() and "no presentation context accepted" in negotiation.inner_text()
    for value in _identifying(sent):
        assert value not in html

    # filters: outcome, caller, SOP class
    tab.goto(f"{node.url}/jobs?outcome=refused")
    assert [r.query_selector(".outcome").inner_text() for r in tab.query_selector_all("#jobs tbody tr")] == ["refused 0xC000"]
    tab.goto(f"{node.url}/jobs?caller=ODDCALLER")
    assert len(tab.query_selector_all("#jobs tbody tr")) == 1
    tab.goto(f"{node.url}/jobs?sop_class=1.2.840.10008.5.1.4.1.1.2&outcome=quarantined")
    assert len(tab.query_selector_all("#jobs tbody tr.outcome-quarantined")) == 1  # the cut CT

    # retry: queued again, quarantined again (the object is still broken); then discard
    tab.goto(f"{node.url}/jobs?outcome=quarantined")
    with tab.expect_navigation():
        tab.click("button.retry")
    node.wait_idle(len(sent) - 1, timeout=300)
    tab.goto(f"{node.url}/jobs?outcome=quarantined")
    assert len(tab.query_selector_all("tr.outcome-quarantined")) == 1
    tab.once("dialog", lambda dialog: dialog.accept())
    with tab.expect_navigation():
        tab.click("button.discard")
    assert "Nothing matches" in tab.inner_text("#jobs")
    assert not list((node.directory / "data" / "quarantine").glob("*.dcm"))


def test_studies_search_instance_view_and_tags(node, tabs, sent):
    tab = tabs["desktop"]
    html = _visit(tabs, f"{node.url}/studies", "studies")
    rows = tab.query_selector_all("#studies tbody tr")
    assert len(rows) == len(sent) - 2  # every realdata object is its own study
    dates = [row.query_selector_all("td")[2].inner_text() for row in rows]
    dated = [d for d in dates if d != "no date"]
    assert dated == sorted(dated, reverse=True) and dates[: len(dated)] == dated  # undated last
    for value in _identifying(sent):
        assert value not in html
    tab.goto(f"{node.url}/studies?modality=XA")
    (xa,) = tab.query_selector_all("#studies tbody tr")
    assert "XA" in xa.inner_text()
    with tab.expect_navigation():
        tab.click("a.study-link")
    study_url = tab.url
    html = _visit(tabs, study_url, "study")
    _image_loaded(tab, "img.thumb")
    with tab.expect_navigation():
        tab.click("a.instance-link")
    instance_url = tab.url
    html += _visit(tabs, instance_url, "instance")
    _image_loaded(tab, "#frame")
    assert tab.inner_text("#frame-number") == "frame 1 of 96"
    with tab.expect_navigation():
        tab.click("#next-frame")
    assert tab.inner_text("#frame-number") == "frame 2 of 96"
    _image_loaded(tab, "#frame")
    first = tab.request.get(f"{instance_url}/frames/1.png").body()
    second = tab.request.get(f"{instance_url}/frames/2.png").body()
    assert first != second
    with tab.expect_navigation():
        tab.click("#last-frame")
    assert tab.inner_text("#frame-number") == "frame 96 of 96"
    assert "pixels" in tab.inner_text("#carriers")
    html += _visit(tabs, f"{instance_url}/tags", "tags")
    tags = tab.inner_text("main")
    assert "PatientIdentityRemoved" in tags and "YES" in tags
    for value in _identifying(sent):
        assert value not in html
    # every link of these pages answers
    for url in (study_url, instance_url):
        tab.goto(url)
        for href in {a.get_attribute("href") for a in tab.query_selector_all("main a[href]")}:
            if href.startswith("/viewer"):
                continue  # the DICOMweb viewer is another module's
            status = tab.request.get(f"{node.url}{href}" if href.startswith("/") else href).status
            assert status == 200, href


def test_actions_download_send_delete(node, tabs, sent, archive, tmp_path):
    tab = tabs["desktop"]
    tab.goto(f"{node.url}/studies?modality=CT&sort=oldest")
    with tab.expect_navigation():
        tab.click("a.study-link")
    study_url = tab.url
    uid = study_url.rsplit("/", 1)[1]
    with tab.expect_download() as download:
        tab.click("#zip")
    download.value.save_as(tmp_path / "study.zip")
    with zipfile.ZipFile(tmp_path / "study.zip") as opened:
        names = opened.namelist()
        stored = pydicom.dcmread(opened.open(names[0]))
    assert stored.StudyInstanceUID == uid and stored.PatientIdentityRemoved == "YES"

    with tab.expect_navigation():
        tab.click("#send-form button[type=submit]")
    tab.wait_for_function("() => document.getElementById('follow').dataset.done === 'yes'", timeout=120_000)
    assert f"Done: all {len(names)} object(s) sent" in tab.inner_text("#send-state")
    _visit(tabs, tab.url, "send")
    received = [pydicom.dcmread(path) for path in archive["folder"].iterdir()]
    assert uid in {ds.StudyInstanceUID for ds in received}

    tab.goto(study_url)
    with tab.expect_navigation():
        tab.click("#delete-study")
    _visit(tabs, tab.url, "delete")
    with tab.expect_navigation():
        tab.click("#confirm")
    assert f"Deleted {len(names)} stored object(s)" in tab.inner_text("#deleted")
    assert tab.request.get(study_url).status == 404
    assert node.query("SELECT count(*) FROM instances WHERE StudyInstanceUID = ?", uid) == [(0,)]
    audit = (node.directory / "audit.log").read_text()
    assert 'EventActionCode="D"' in audit and "DICOM Instances Transferred" in audit


def test_dashboard_and_every_page_fit_a_phone(node, tabs, sent):
    for path, name in [("/", "index"), ("/dashboard", "dashboard"), ("/protect", "protect"), ("/reveal", "reveal"),
                       ("/encrypt", "encrypt"), ("/decrypt", "decrypt"), ("/audit", "audit")]:
        html = _visit(tabs, f"{node.url}{path}", name)
        for value in _identifying(sent):
            assert value not in html, f"{value} on {path}"
    phone = tabs["phone"]
    header = phone.evaluate("() => document.querySelector('header').getBoundingClientRect().bottom")
    last_link = phone.evaluate("() => [...document.querySelectorAll('header nav a')].pop().getBoundingClientRect().bottom")
    assert last_link <= header  # every link on the dark bar


def _noisy(source: Path, target: Path) -> Path:
    """``source`` with strong noise over every pixel: its pixel carrier is destroyed, the header
    carrier (bound to the series, not the pixels) still opens."""
    ds = pydicom.dcmread(source)
    ds.decompress()
    pixels = ds.pixel_array
    noise = np.random.default_rng(5).normal(0, 300, pixels.shape)
    info = np.iinfo(pixels.dtype)
    ds.PixelData = np.clip(pixels + noise, info.min, info.max).astype(pixels.dtype).tobytes()
    ds.save_as(target)
    return target


def test_protect_and_reveal_say_which_carriers(node, tabs, sent, tmp_path):
    tab = tabs["desktop"]
    (key,) = node.query("SELECT path FROM instances WHERE carriers = 'pixels+header' AND Modality = 'CT' LIMIT 1")[0]
    stored = node.directory / "data" / key
    noisy = _noisy(stored, tmp_path / "noisy.dcm")
    for width, each in tabs.items():
        each.goto(f"{node.url}/reveal")
        each.set_input_files("#files", [str(stored), str(noisy)])
        each.set_input_files("#keys", [str(node.peer_keys)])
        with each.expect_navigation(timeout=300_000):
            each.click("form.work button[type=submit]")
        each.screenshot(path=SHOTS / f"console-reveal-carriers-{width}.png", full_page=True)
        if width == "phone":
            _fits(each)
    clean, damaged = tab.query_selector_all("section.revealed .carrier")
    assert clean.inner_text() == "Delivered by the pixels carrier; confirmed by the header carrier (they agree)."
    assert "ok" in clean.get_attribute("class")
    assert damaged.inner_text().startswith("Delivered by the header carrier; the pixels carrier could not be read")
    assert "warning" in damaged.get_attribute("class")

    for width, each in tabs.items():  # a header-only object says so, no "inf dB, 0 changed pixels"
        each.goto(f"{node.url}/protect")
        small = next(path for path in sent if path.name == "mr_dcm4che_1.dcm")
        each.set_input_files("#files", [str(small), str(image_path("SC_rgb_small_odd.dcm"))])
        with each.expect_navigation(timeout=300_000):
            each.click("form.work button[type=submit]")
        each.wait_for_selector("#zip", timeout=300_000)
        each.screenshot(path=SHOTS / f"console-protect-carriers-{width}.png", full_page=True)
        if width == "phone":
            _fits(each)
    rows = tab.query_selector_all("table.results tbody tr")
    grey, colour = rows
    assert grey.query_selector(".carriers strong").inner_text() in ("pixels + header", "pixels(core) + header")
    assert "dB at peak 65535" in grey.inner_text()
    assert colour.query_selector(".carriers strong").inner_text() == "header only"
    assert "no pixel carrier: image of 3 x 3 pixels: too small" in colour.inner_text()  # colour is written in where it fits
    assert "pixels unchanged" in colour.inner_text() and "inf" not in colour.inner_text()


def test_files_can_be_dropped_on_a_form_and_are_listed(node, tabs):
    tab = tabs["desktop"]
    tab.goto(f"{node.url}/protect")
    dropped = tab.evaluate_handle("""() => { const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(3000)], "first.dcm"));
        data.items.add(new File([new Uint8Array(5000)], "second.dcm")); return data; }""")
    tab.dispatch_event("form.work", "drop", {"dataTransfer": dropped})
    assert tab.evaluate("() => document.getElementById('files').files.length") == 2
    listed = [item.inner_text() for item in tab.query_selector_all("ul.files li")]
    assert listed == ["first.dcm (3 kB)", "second.dcm (5 kB)"]
    assert len(tab.query_selector_all("ul.files progress")) == 2
