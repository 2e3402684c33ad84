"""The OHIF viewer (npm's prebuilt @ohif/app, served under /viewer) opening protected studies of a
real ``stegonode serve`` through its DICOMweb, in Debian's Chromium driven by Playwright: a CT
series from the console's "Open in viewer" link, and a multi-frame object. The viewport must show
the image (its pixels not blank) and the browser console must show no error from the viewer.
Screenshots: build/web/viewer-ct.png, build/web/viewer-multiframe.png."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from stegonode.web.dicomweb import OHIF_VERSION, REPOSITORY

from nodes import PATIENT, NodeProcess, free_port, storescu, write_series

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: scripts/setup.sh --test")

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPOSITORY / "build" / "web"
VIEWER = REPOSITORY / "build" / "ohif" / OHIF_VERSION / "dist"
TOKEN = "viewer-test-token-0123456789abcdefghij"
LOGIN_TOKEN = re.compile(r"web console login token: (\S+)")
SERIES = 3
# Console messages of the viewer that are not failures: Chromium's software WebGL notice.
HARMLESS = ("GPU stall due to ReadPixels", "software rasterizer", "favicon.ico")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    if not (VIEWER / "index.html").is_file():
        pytest.fail(f"the OHIF viewer is not at {VIEWER}: run scripts/setup.sh --test (or --viewer)")
    directory = tmp_path_factory.mktemp("viewer")
    port = free_port()
    running = NodeProcess(directory, tables={
        "web": {"enabled": True, "port": port, "login": "token"},
        "dicomweb": {"token": TOKEN},
        "handlers.segment": {"segmenter": "classical"},
    })
    running.node_url = f"http://127.0.0.1:{port}"
    running.start()
    multiframe = pydicom.dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    multiframe.PatientName, multiframe.PatientID = "Panza^Sancho", "PID-20411"
    multiframe.save_as(directory / "multiframe.dcm")
    files = [*write_series(directory / "series", SERIES), directory / "multiframe.dcm"]
    result = storescu(running.port, files)
    assert result.returncode == 0, result.stdout + result.stderr
    running.wait_idle(SERIES + 1)
    deadline = time.monotonic() + 60
    while not (match := LOGIN_TOKEN.search(running.log.read_text())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert match, running.log.read_text()
    running.login_token = match.group(1)
    yield running
    running.stop()
    assert "Traceback" not in running.log.read_text()


def _studies(node) -> dict[int, str]:
    """Study Instance UID by number of instances, from QIDO-RS."""
    request = urllib.request.Request(f"{node.node_url}/dicomweb/studies",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        found = json.loads(answer.read())
    return {int(s["00201208"]["Value"][0]): s["0020000D"]["Value"][0] for s in found}


@pytest.fixture(scope="module")
def page(node):
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        tab = context.new_page()
        tab.goto(f"{node.node_url}/login")
        tab.fill("#secret", node.login_token)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"{node.node_url}/")
        yield tab
        context.close()
        browser.close()


def _watch(tab) -> list[str]:
    errors: list[str] = []
    tab.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url', '')})")
           if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    return errors


def _viewport_picture(tab) -> np.ndarray:
    canvas = tab.locator(".cornerstone-canvas, canvas").first
    return np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("L"))


def _shows_image(tab, timeout: float = 120) -> np.ndarray:
    """The viewport's pixels once it shows an image (not blank: many grey levels, wide spread)."""
    deadline = time.monotonic() + timeout
    picture = np.zeros((1, 1))
    while time.monotonic() < deadline:
        if tab.locator(".cornerstone-canvas").count():
            picture = _viewport_picture(tab)
            if len(np.unique(picture)) > 64 and picture.std() > 20:
                return picture
        tab.wait_for_timeout(500)
    raise AssertionError(f"the viewport stayed blank (std {picture.std():.1f})")


def _skip_tour(tab) -> None:
    skip = tab.get_by_text("Skip all")
    if skip.count():
        skip.first.click()


def _shot(tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SHOTS / f"{name}.png")


def _viewer_errors(errors: list[str]) -> list[str]:
    return [e for e in errors if not any(h in e for h in HARMLESS)]


def test_open_protected_ct_series_from_the_studies_page(node, page):
    ct = _studies(node)[SERIES]
    errors = _watch(page)
    page.goto(f"{node.node_url}/studies")
    link = page.locator(f"a.open-viewer[href$='{ct}']")
    assert link.count() == 1
    link.click()
    page.wait_for_url(re.compile(r"/viewer/viewer\?StudyInstanceUIDs="))
    picture = _shows_image(page)
    _skip_tour(page)
    page.wait_for_timeout(500)
    _shot(page, "viewer-ct")
    assert picture.shape[0] > 300 and picture.shape[1] > 300
    body = page.inner_text("body")
    assert not any(value in body for value in PATIENT.values())  # the protected study only
    assert "SN" in body or "CT" in body
    assert _viewer_errors(errors) == []


def test_open_multiframe_object(node, page):
    multiframe = _studies(node)[1]
    errors = _watch(page)
    page.goto(f"{node.node_url}/viewer/viewer?StudyInstanceUIDs={multiframe}")
    _shows_image(page)
    _skip_tour(page)
    page.wait_for_timeout(500)
    _shot(page, "viewer-multiframe")
    assert "Panza" not in page.inner_text("body")
    assert _viewer_errors(errors) == []


def test_viewer_is_behind_the_login(node):
    request = urllib.request.Request(f"{node.node_url}/viewer/app-config.js")
    try:
        urllib.request.urlopen(request, timeout=30)
        status = 200
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 401
