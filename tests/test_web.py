"""The web console in Debian's Chromium (Playwright), served by a real ``stegonode serve`` that a
real storescu feeds; the command line checks what the browser did. Screenshots: build/web/."""

from __future__ import annotations

import http.client
import io
import json
import re
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate, generate_frames

from stegonode import cli
from stegonode.codecs import keys as keyfiles
from stegonode.dicom.pixels import PixelFormat, read_pixels

from images import image_path
from nodes import PATIENT, STEGONODE, NodeProcess, free_port, storescu, write_series

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: scripts/setup.sh --test")

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "build" / "web"
UPLOAD_MB = 2
PAGES = ["/", "/protect", "/reveal", "/encrypt", "/decrypt", "/dashboard", "/jobs", "/studies"]
TOKEN = re.compile(r"web console login token: (\S+)")


def _wait_for(path: Path, pattern: re.Pattern, process: subprocess.Popen | None = None, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = pattern.search(path.read_text()) if path.exists() else None
        if match:
            return match
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"exited at start:\n{path.read_text()}")
        time.sleep(0.1)
    raise RuntimeError(f"{pattern.pattern!r} not seen:\n{path.read_text()}")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: run scripts/setup.sh --test (installs chromium, chromium-driver)")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Console:
    """``stegonode serve`` with its console on a free loopback port and a start token."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        web = {"enabled": True, "port": self.port, "login": "token", "max_upload_mb": UPLOAD_MB}
        # The classical segmenter keeps the workers light (Mask R-CNN: tests/test_node.py).
        self.node = NodeProcess(directory, tables={"web": web, "handlers.segment": {"segmenter": "classical"}})
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Console:
        self.node.start()
        self.token = _wait_for(self.node.log, TOKEN, self.node.process).group(1)
        return self


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    running = Console(tmp_path_factory.mktemp("console")).start()
    yield running
    running.node.stop()
    log = running.node.log.read_text()
    assert "Traceback" not in log
    for value in PATIENT.values():
        assert value not in log


@pytest.fixture(scope="module")
def page(browser, console):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.goto(f"{console.url}/dashboard")
    assert tab.url.startswith(f"{console.url}/login")
    tab.fill("#secret", "not-the-token")
    tab.click("button[type=submit]")
    assert tab.inner_text(".error") == "wrong token"
    _shot(tab, "login")
    tab.fill("#secret", console.token)
    tab.click("button[type=submit]")
    tab.wait_for_url(f"{console.url}/dashboard")
    yield tab
    context.close()


def _shot(tab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def _submit(tab) -> None:
    with tab.expect_navigation(timeout=300_000):
        tab.click("form.work button[type=submit]")


def _progress_shown(tab, name: str) -> None:
    """Submitting the form shows the progress panel at once. Seen here with the submission itself
    held back by a listener that runs after the page's own; the page is then loaded afresh."""
    tab.evaluate("() => window.addEventListener('submit', event => event.preventDefault())")
    tab.click("form.work button[type=submit]")
    tab.wait_for_timeout(1500)
    assert tab.is_visible("#progress")
    assert int(tab.inner_text("#progress-seconds")) >= 1
    assert tab.is_disabled("form.work button[type=submit]")
    _shot(tab, name)
    tab.reload()


def _download(tab, selector: str, target: Path) -> Path:
    with tab.expect_download() as download:
        tab.click(selector)
    download.value.save_as(target)
    return target


def _image_loaded(tab, selector: str) -> bool:
    """True once the first image matching ``selector`` has loaded with a picture in it."""
    script = "s => { const img = document.querySelector(s); return img.complete && img.naturalWidth > 0; }"
    return bool(tab.wait_for_function(script, arg=selector, timeout=30_000).json_value())


def _cli(capsys, *args: object) -> str:
    """Run a ``stegonode`` command in this process (its models are loaded once); its stdout."""
    capsys.readouterr()
    assert cli.main([str(arg) for arg in args]) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> Path:
    """A real CT slice carrying the test identity (tests/nodes.py PATIENT)."""
    (path,) = write_series(tmp_path_factory.mktemp("original"), 1)
    return path


def _get(console: Console, path: str, method: str = "GET", **headers: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", console.port, timeout=30)
    connection.request(method, path, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


def test_every_page_needs_the_login(console):
    for path in PAGES + ["/dashboard.json", "/studies/1.2.3.dcm", "/protect/abcdefghijklmnopqrstuv"]:
        html = _get(console, path, Accept="text/html")
        assert html.status == 302 and html.getheader("Location").startswith("/login"), path
        assert _get(console, path).status == 401, path
    for path in ["/protect", "/reveal", "/encrypt", "/decrypt", "/logout"]:
        assert _get(console, path, "POST").status == 401, path
    login = _get(console, "/login")
    assert login.status == 200
    policy = login.getheader("Content-Security-Policy")
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert login.getheader("X-Frame-Options") == "DENY"
    assert login.getheader("X-Content-Type-Options") == "nosniff"
    assert login.getheader("Cache-Control") == "no-store"


def test_a_form_without_its_csrf_token_is_refused(page, console, original):
    refused = page.request.post(f"{console.url}/encrypt", multipart={
        "cipher": "aes-gcm",
        "file": {"name": "x.dcm", "mimeType": "application/dicom", "buffer": original.read_bytes()},
    })
    assert refused.status == 400
    assert "The CSRF token is missing" in refused.text()
    assert "Traceback" not in refused.text()


def test_an_oversize_upload_gets_the_size_message(page, console):
    big = {"name": "big.dcm", "mimeType": "application/dicom", "buffer": b"\0" * (UPLOAD_MB * 2**20 + 1)}
    page.goto(f"{console.url}/encrypt")
    page.set_input_files("#file", files=[big])
    page.click("form.work button[type=submit]")
    message = page.inner_text(".upload-error")
    assert f"the console accepts at most {UPLOAD_MB} MB per upload ([web] max_upload_mb" in message
    assert page.url == f"{console.url}/encrypt"  # nothing was sent
    _shot(page, "upload-too-large")
    # The server says the same when a client skips the page's check.
    token = page.input_value("input[name=csrf_token]")
    answer = page.request.post(f"{console.url}/encrypt", multipart={"csrf_token": token, "file": big})
    assert answer.status == 413
    assert f"at most {UPLOAD_MB} MB per upload ([web] max_upload_mb in node.toml)" in answer.text()


def _identity(ds: pydicom.Dataset) -> dict[str, str]:
    return {keyword: str(ds.get(keyword)) for keyword in PATIENT}


def test_protect_in_the_browser_then_reveal_with_the_command_line(page, console, original, tmp_path, capsys):
    garbage = tmp_path / "notes.dcm"
    garbage.write_bytes(b"not a DICOM file at all" * 10)
    page.goto(f"{console.url}/protect")
    page.set_input_files("#files", [str(original), str(garbage)])
    page.select_option("#segmenter", "classical")
    page.select_option("#cipher", "aes-gcm")
    _submit(page)
    if page.query_selector("#job-progress"):  # the job page follows the job until it is done
        _shot(page, "protect-progress")
    page.wait_for_selector("#zip", timeout=300_000)
    ok, failed = page.query_selector_all("table.results tbody tr")
    peak = PixelFormat.of(pydicom.dcmread(original)).peak
    assert f"(peak {peak})" in ok.inner_text() and "dB at peak 65535" in ok.inner_text()
    assert int(ok.query_selector(".changed").inner_text()) > 0
    assert "pixels encrypted (aes-gcm)" in ok.inner_text()
    assert ok.query_selector(".carriers").inner_text() == "pixels + header"
    assert "notes.dcm" in failed.inner_text()  # a failed row names its file
    assert _image_loaded(page, "img.overlay")
    assert "not a DICOM file" in failed.inner_text()
    _shot(page, "protect")

    archive = _download(page, "#zip", tmp_path / "protected.zip")
    with zipfile.ZipFile(archive) as opened:
        (name,) = opened.namelist()
        opened.extractall(tmp_path / "protected")
    protected = tmp_path / "protected" / name
    stored = pydicom.dcmread(protected)
    assert stored.PatientIdentityRemoved == "YES"
    assert not set(PATIENT.values()) & set(_identity(stored).values())

    _cli(capsys, "reveal", protected, "--keys", console.node.peer_keys, "--out", tmp_path / "revealed")
    restored, source = pydicom.dcmread(tmp_path / "revealed" / name), pydicom.dcmread(original)
    assert _identity(restored) == _identity(source) == {k: str(v) for k, v in PATIENT.items()}
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyDate"):
        assert restored.get(keyword) == source.get(keyword), keyword


def _attribute_table(section) -> dict[str, str]:
    rows = section.query_selector_all("table.attributes tbody tr")
    return dict(tuple(cell.inner_text() for cell in row.query_selector_all("td")) for row in rows)


def test_protect_with_the_command_line_then_reveal_in_the_browser(page, console, original, tmp_path, capsys):
    node_keys = console.node.data / "keys" / "node.keys"
    _cli(capsys, "protect", original, "--out", tmp_path / "protected", "--keys", node_keys,
         "--segmenter", "classical")
    protected = tmp_path / "protected" / original.name
    printed = _cli(capsys, "reveal", protected, "--keys", console.node.peer_keys, "--json", "--out", tmp_path / "cli")
    expected = json.loads(printed)["attributes"]

    page.goto(f"{console.url}/reveal")
    page.set_input_files("#files", [str(protected)])
    page.set_input_files("#keys", [str(console.node.peer_keys)])
    _submit(page)
    shown = _attribute_table(page.query_selector("section.revealed"))
    assert shown == {k: v if isinstance(v, str) else json.dumps(v) for k, v in expected.items()}
    for keyword, value in PATIENT.items():
        assert shown[keyword] == value
    _shot(page, "reveal")

    downloaded = _download(page, "section.revealed a.download", tmp_path / "browser.dcm")
    assert downloaded.read_bytes() == (tmp_path / "cli" / original.name).read_bytes()
    document = json.loads(_download(page, "#json", tmp_path / "revealed.json").read_text())
    assert [entry["attributes"] for entry in document] == [expected]
    assert page.evaluate("() => document.cookie") == ""  # the session cookie is HttpOnly
    carrier = page.inner_text("section.revealed .carrier")
    assert carrier.startswith("Delivered by the pixels carrier; confirmed by the header carrier")

    keyfiles.generate(tmp_path / "other")  # another node's peer.keys: nothing revealed, an error page
    page.goto(f"{console.url}/reveal")
    page.set_input_files("#files", [str(protected)])
    page.set_input_files("#keys", [str(tmp_path / "other" / "peer.keys")])
    _submit(page)
    assert "Nothing revealed" in page.inner_text("#nothing-revealed")
    assert page.query_selector(".phi") is None and page.query_selector("#json") is None
    assert "key" in page.inner_text("section.revealed .reason")
    _shot(page, "reveal-wrong-keys")


def test_an_already_protected_upload_is_kept_as_it_is(page, console, original, tmp_path, capsys):
    node_keys = console.node.data / "keys" / "node.keys"
    _cli(capsys, "protect", original, "--out", tmp_path / "protected", "--keys", node_keys,
         "--segmenter", "classical")
    protected = tmp_path / "protected" / original.name
    page.goto(f"{console.url}/protect")
    page.set_input_files("#files", [str(protected)])
    page.select_option("#segmenter", "classical")
    _submit(page)
    page.wait_for_selector("#zip", timeout=300_000)
    (row,) = page.query_selector_all("table.results tbody tr")
    assert row.query_selector(".status").inner_text() == "already protected"
    assert "kept as it is, not protected again" in row.inner_text()
    kept = _download(page, "a.download", tmp_path / "kept.dcm")
    printed = _cli(capsys, "reveal", kept, "--keys", console.node.peer_keys, "--json")
    assert json.loads(printed)["attributes"]["PatientID"] == PATIENT["PatientID"]  # not a pseudonym


def test_encrypt_then_decrypt_in_the_browser(page, console, original, tmp_path):
    page.goto(f"{console.url}/encrypt")
    page.set_input_files("#file", [str(original)])
    _progress_shown(page, "encrypt-progress")
    page.set_input_files("#file", [str(original)])
    page.select_option("#cipher", "chaos")
    _submit(page)
    tests = [row.query_selector("td").inner_text() for row in page.query_selector_all("table.report tbody tr")]
    assert {"chi-square", "entropy", "NPCR, one pixel changed", "avalanche, one key bit flipped"} <= set(tests)
    assert _image_loaded(page, "img.histograms")
    _shot(page, "encrypt")
    encrypted = _download(page, "#download", tmp_path / "encrypted.dcm")
    plain = read_pixels(pydicom.dcmread(original))
    assert not np.array_equal(read_pixels(pydicom.dcmread(encrypted)), plain)

    page.goto(f"{console.url}/decrypt")
    page.set_input_files("#file", [str(encrypted)])
    page.set_input_files("#keys", [str(console.node.peer_keys)])
    _submit(page)
    assert "authentication verified" in page.inner_text("#outcome")
    _shot(page, "decrypt")
    decrypted = _download(page, "#download", tmp_path / "decrypted.dcm")
    np.testing.assert_array_equal(read_pixels(pydicom.dcmread(decrypted)), plain)

    keyfiles.generate(tmp_path / "other")
    altered = pydicom.dcmread(encrypted)
    data = bytearray(altered.PixelData)
    data[len(data) // 2] ^= 0x01
    altered.PixelData = bytes(data)
    altered.save_as(tmp_path / "altered.dcm")
    for upload, keys, reason in [
        (encrypted, tmp_path / "other" / "peer.keys", "pixels were encrypted with pixel-cipher key"),
        (tmp_path / "altered.dcm", console.node.peer_keys, "encrypted pixels failed authentication"),
    ]:
        page.goto(f"{console.url}/decrypt")
        page.set_input_files("#file", [str(upload)])
        page.set_input_files("#keys", [str(keys)])
        _submit(page)
        assert reason in page.inner_text(".error-page .reason")
        assert "Traceback" not in page.content()
    _shot(page, "decrypt-altered")


@pytest.fixture
def undecodable(tmp_path) -> Path:
    """A valid object of the test patient whose JPEG 2000 stream is cut: a worker quarantines it."""
    ds = pydicom.dcmread(image_path("693_J2KR.dcm"))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([frame[: len(frame) // 4]])
    for keyword, value in PATIENT.items():
        setattr(ds, keyword, value)
    ds.save_as(tmp_path / "undecodable.dcm")
    return tmp_path / "undecodable.dcm"


def test_dashboard_and_studies_after_a_storescu_transfer(page, console, undecodable, tmp_path):
    series = write_series(tmp_path / "series", 3)
    sent = storescu(console.node.port, series)
    assert sent.returncode == 0, sent.stderr
    assert storescu(console.node.port, [undecodable], "-xv").returncode == 0
    console.node.wait_idle(4)
    status = console.node.status()

    page.goto(f"{console.url}/dashboard")
    shown = {cell.get_attribute("data-count"): cell.inner_text()
             for cell in page.query_selector_all("[data-count]")}
    for key in ("received", "queued", "processed", "failed", "quarantined"):
        assert int(shown[key]) == status[key], key
    assert status["processed"] == 3 and status["quarantined"] == 1
    assert page.inner_text('#carriers [data-carriers="pixels+header"]') == "3"
    assert status["stored_by_carriers"] == {"pixels+header": 3}
    assert "pixel data does not decode" in page.inner_text("#quarantine")
    assert "STORESCU" in page.inner_text("#associations") and "3 stored" in page.inner_text("#associations")
    assert len(page.query_selector_all("svg.plot rect.bar")) == 60
    _shot(page, "dashboard")

    page.goto(f"{console.url}/studies")
    assert len(page.query_selector_all("#studies tbody tr")) == 1
    assert _image_loaded(page, "img.thumb")
    _shot(page, "studies")
    with page.expect_navigation():
        page.click("a.study-link")
    study_page = page.url
    assert len(page.query_selector_all("a.instance-link")) == 3
    with page.expect_navigation():
        page.click("a.instance-link")
    instance_page = page.url
    stored = pydicom.dcmread(_download(page, "#download", tmp_path / "stored.dcm"))
    assert stored.PatientIdentityRemoved == "YES"

    sent_uids = set()
    for path in series + [undecodable]:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        sent_uids |= {ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID}
    for path in PAGES + ["/dashboard.json", study_page, instance_page, f"{instance_page}/tags"]:
        page.goto(path if path.startswith("http") else f"{console.url}{path}")
        html = page.content()
        for value in [*PATIENT.values(), *sent_uids]:
            assert value not in html, f"{value} on {path}"


def test_web_alone_with_a_password_and_refusals_beyond_loopback(browser, tmp_path, capsys, monkeypatch):
    password = "correct horse battery staple"
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    hashed = _cli(capsys, "web", "--hash-password").strip()
    assert hashed.startswith('password_hash = "scrypt:')
    port = free_port()
    config = tmp_path / "node.toml"
    config.write_text(f'[node]\ndata_dir = "{tmp_path / "data"}"\n\n[web]\nport = {port}\n'
                      f'login = "password"\n{hashed}\n')
    log = tmp_path / "web.log"
    with open(log, "w") as output:
        web = subprocess.Popen([STEGONODE, "web", "--config", str(config)], stdout=output,
                               stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        _wait_for(log, re.compile("web console on"), web)
        context = browser.new_context()
        tab = context.new_page()
        tab.goto(f"http://127.0.0.1:{port}/studies")
        tab.fill("#secret", "wrong password here")
        tab.click("button[type=submit]")
        assert tab.inner_text(".error") == "wrong password"
        tab.fill("#secret", password)
        tab.click("button[type=submit]")
        tab.wait_for_url(f"http://127.0.0.1:{port}/studies")
        assert "no index at" in tab.inner_text("main")  # no node here: the file pages only
        tab.goto(f"http://127.0.0.1:{port}/")
        assert len(tab.query_selector_all("ul.cards li")) == 7
        _shot(tab, "index")
        context.close()
    finally:
        web.terminate()
        web.wait(timeout=30)

    for command, login, expected in [("serve", "none", "is beyond loopback and web.login = \"none\""),
                                     ("web", "password", "needs web.password_hash")]:
        config.write_text(f'[node]\ndata_dir = "{tmp_path / "data"}"\nport = {free_port()}\n\n'
                          f'[web]\nbind_address = "0.0.0.0"\nport = {free_port()}\nlogin = "{login}"\n')
        refused = subprocess.run([STEGONODE, command, "--config", str(config)], capture_output=True,
                                 text=True, timeout=120, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert expected in refused.stderr
        assert "Traceback" not in refused.stderr
        assert "listening on" not in refused.stderr  # the node's DICOM port never opened
