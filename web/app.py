"""The console's Flask application: login, CSRF, upload limit, security headers, error pages."""

from __future__ import annotations

import io
import logging
import secrets
import threading
from dataclasses import dataclass, field

from flask import Blueprint, Flask, Response, render_template, request
from flask.wrappers import Request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException, SecurityError

from stegonode.codecs import keys as keyfiles
from stegonode.errors import StegonodeError
from stegonode.handlers.pipeline import Pipeline, configured_pipeline
from stegonode.node import audit
from stegonode.node.audit import AuditTrail, index_record
from stegonode.node.audit import Event as AuditEvent
from stegonode.node.config import Config
from stegonode.node.index import Index, existing_index
from stegonode.node.storage import NodePaths, ObjectStore, open_store

from . import auth
from .jobs import ProtectJobs
from .sending import Sends
from .throttle import LoginThrottle

log = logging.getLogger("stegonode.web")
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
LOOPBACK_HOSTS = ["localhost", "127.0.0.1", "[::1]", "::1"]
pages = Blueprint("pages", __name__)


class InMemoryRequest(Request):
    """Uploaded files stay in memory (werkzeug spools large ones to temporary files): an
    upload may be a patient's original or the peer's key file."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


@dataclass
class ConsoleState:
    """What the pages share: the node's config, its paths, the login, the protect jobs."""

    config: Config
    login: auth.Login
    audit: AuditTrail = field(default_factory=lambda: AuditTrail(""))
    throttle: LoginThrottle = field(default_factory=lambda: LoginThrottle(1.0, 10, 300.0))
    jobs: ProtectJobs = field(default_factory=ProtectJobs)
    sends: Sends = field(default_factory=Sends)
    _pipelines: dict[tuple[str | None, str | None], Pipeline] = field(default_factory=dict)
    _index: Index | None = None
    _storage: ObjectStore | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def paths(self) -> NodePaths:
        return NodePaths.of(self.config["node"])

    def node_keys(self) -> keyfiles.NodeKeys:
        """The node's node.keys (protect and encrypt act as the node)."""
        return keyfiles.load_node_keys(self.paths.keys)

    def pipeline(self, cipher: str | None, segmenter: str | None) -> Pipeline:
        """The node's pipeline with the page's options, built once per combination."""
        with self._lock:
            key = (cipher, segmenter)
            if key not in self._pipelines:
                self._pipelines[key] = configured_pipeline(self.config, self.node_keys(), cipher, segmenter)
            return self._pipelines[key]

    def record_audit(self, event: AuditEvent) -> None:
        """Keep a console event in the node's index (not before the node has created it)."""
        try:
            index = self.index()
        except StegonodeError:
            return
        index.record_audit(index_record(event))

    def storage(self) -> ObjectStore:
        """The node's storage: its data directory or its object store ([storage] url)."""
        with self._lock:
            if self._storage is None:
                self._storage = open_store(self.config, self.paths.data_dir, create=False)
            return self._storage

    def index(self) -> Index:
        """The node's index (ConfigError while the node has not created it)."""
        with self._lock:
            if self._index is None:
                self._index = existing_index(self.paths.database)
            return self._index


def create_app(config: Config, login: auth.Login) -> Flask:
    from . import auditpage, dicomweb, files, jobspage, nodepages, studypages

    app = Flask(__name__)
    app.request_class = InMemoryRequest
    web = config["web"]
    app.config.update(
        SECRET_KEY=secrets.token_bytes(32),  # sessions and CSRF tokens end with the process
        MAX_CONTENT_LENGTH=web["max_upload_mb"] * (1 << 20),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_NAME="stegonode_session",
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session
    )
    if login.mode == "none":
        # Open on loopback only: refuse other Host names, so a web page cannot reach the
        # console by pointing its own host name at 127.0.0.1 (DNS rebinding).
        app.config["TRUSTED_HOSTS"] = LOOPBACK_HOSTS
    state = ConsoleState(
        config, login, audit=audit.from_config(config),
        throttle=LoginThrottle(web["login_delay_seconds"], web["login_lock_after"], web["login_lock_seconds"]))
    state.audit.add_sink(state.record_audit)
    app.extensions["stegonode"] = state
    app.before_request(auth.require_login)  # first: without the login, not even the CSRF check runs
    CSRFProtect(app)
    app.after_request(_headers)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(StegonodeError, _input_error)
    app.register_error_handler(Exception, _internal_error)
    app.context_processor(lambda: {"login_mode": login.mode, "upload_limit_mb": web["max_upload_mb"]})
    for blueprint in (pages, auth.bp, files.bp, nodepages.bp, auditpage.bp, jobspage.bp, studypages.bp):
        app.register_blueprint(blueprint)
    dicomweb.register(app, config)  # /dicomweb and /viewer (docs/dicomweb.md)
    return app


@pages.route("/")
def index():
    return render_template("index.html")


def _headers(response):
    response.headers.update(SECURITY_HEADERS)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"  # the reveal page carries patient data
    return response


def _error_page(status: int, title: str, reason: str):
    return render_template("error.html", status=status, title=title, reason=reason), status


def _http_error(exc: HTTPException):
    if isinstance(exc, SecurityError):  # an untrusted Host: no page can be built for it
        return Response("400: this console answers only to its own host name\n", 400, mimetype="text/plain")
    if exc.code == 413:
        limit = request.max_content_length // (1 << 20) if request.max_content_length else 0
        return _error_page(413, "Upload too large",
                           f"The upload is larger than this console accepts: at most {limit} MB per "
                           "upload ([web] max_upload_mb in node.toml). Send fewer or smaller files.")
    if exc.code == 401:
        return _error_page(401, "Sign in first", "This console needs a login: open the login page.")
    return _error_page(exc.code or 500, exc.name, exc.description or "")


def _csrf_error(exc: CSRFError):
    return _error_page(400, "Form refused", f"{exc.description} Reload the page and send the form again.")


def _input_error(exc: StegonodeError):
    return _error_page(400, "Cannot do that", str(exc))


def _internal_error(exc: Exception):
    # The type only: a message may quote a value from a patient's file.
    log.error("console: %s failed with %s", request.endpoint, type(exc).__name__)
    return _error_page(500, "Internal error",
                       f"The console failed ({type(exc).__name__}); nothing was kept. The node's log has the time.")
