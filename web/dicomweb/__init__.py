"""DICOMweb (PS3.18) on the console's port: QIDO-RS, WADO-RS and STOW-RS under ``/dicomweb``,
and the OHIF viewer under ``/viewer`` (:mod:`.viewer`).

Everything served is the stored, protected object: the same index C-FIND matches on
(:mod:`stegonode.node.query`), the same files C-GET sends (:mod:`stegonode.node.retrieve`),
and a stored instance goes through the same check and durable queue as a C-STORE
(:meth:`stegonode.node.ingest.Ingest.accept`). Access: a program presents node.toml's
``[dicomweb] token`` as ``Authorization: Bearer``; the browser (the viewer) the console's login
session; with ``web.login = "none"`` (loopback only) the console is open and so is this.
Every query, retrieval and store is audited (:mod:`stegonode.node.audit`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request, session
from werkzeug.exceptions import HTTPException

from stegonode.errors import StegonodeError
from stegonode.node import audit

OHIF_VERSION = "3.13.2"  # the prebuilt viewer scripts/setup.sh installs (npm @ohif/app, MIT)
REPOSITORY = Path(__file__).resolve().parents[2]
log = logging.getLogger("stegonode.web")
bp = Blueprint("dicomweb", __name__, url_prefix="/dicomweb")


@dataclass(frozen=True)
class Settings:
    """node.toml's ``[dicomweb]`` table."""

    enabled: bool
    token: str
    viewer_dir: Path


def settings(config: Any) -> Settings:
    """The one place the ``[dicomweb]`` table is read."""
    table = config.get("dicomweb", {})
    viewer = table.get("viewer_dir", "") or REPOSITORY / "build" / "ohif" / OHIF_VERSION / "dist"
    return Settings(bool(table.get("enabled", True)), str(table.get("token", "")), Path(viewer))


def register(app: Flask, config: Any) -> None:
    """The console's hook: mount DICOMweb and the viewer when ``[dicomweb] enabled``."""
    from . import qido, stow, viewer, wado  # noqa: F401 (their routes join the blueprint)

    chosen = settings(config)
    if not chosen.enabled:
        return
    app.extensions["stegonode.dicomweb"] = chosen
    app.register_blueprint(bp)
    app.register_blueprint(viewer.bp)
    app.context_processor(lambda: {"viewer_url": "/viewer/viewer?StudyInstanceUIDs="})  # studies page
    app.after_request_funcs.setdefault(None, []).insert(0, viewer.headers)  # runs after the console's
    csrf = app.extensions.get("csrf")
    if csrf is not None:  # programs send no CSRF token; the session cookie is SameSite=Strict
        csrf.exempt(bp)


def current_settings() -> Settings:
    return current_app.extensions["stegonode.dicomweb"]


@bp.before_request
def authorize() -> Response | None:
    """A bearer token, the console's login session, or an open console (login "none")."""
    given = request.headers.get("Authorization", "")
    if given[:7].lower() == "bearer ":
        token = current_settings().token
        if token and secrets.compare_digest(given[7:].strip().encode(), token.encode()):
            g.dicomweb_caller = "dicomweb token"
            return None
        return _refused("wrong bearer token")
    state = current_app.extensions["stegonode"]
    if session.get("signed_in") or state.login.mode == "none":
        g.dicomweb_caller = "console"
        return None
    return _refused("sign in to the console, or send [dicomweb] token as a bearer token")


def _refused(reason: str) -> Response:
    response = Response(f"401: {reason}\n", 401, mimetype="text/plain")
    response.headers["WWW-Authenticate"] = 'Bearer realm="stegonode DICOMweb"'
    return response


def record(event_kind: str, outcome: str = "success", **fields: Any) -> None:
    """Audit one DICOMweb request: who (the token or the console session), from where."""
    state = current_app.extensions["stegonode"]
    state.audit.record(audit.Event(event_kind, outcome, user=g.get("dicomweb_caller", "unknown"),
                                   address=request.remote_addr or "unknown", **fields))


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    return Response(f"{exc.code}: {exc.description}\n", exc.code or 500, mimetype="text/plain")


@bp.errorhandler(StegonodeError)
def _input_error(exc: StegonodeError) -> Response:
    return Response(f"400: {exc}\n", 400, mimetype="text/plain")


@bp.errorhandler(Exception)
def _internal_error(exc: Exception) -> Response:
    # The type only: a message may quote a value from a stored object.
    log.error("DICOMweb: %s failed with %s", request.endpoint, type(exc).__name__)
    return Response(f"500: the node failed ({type(exc).__name__})\n", 500, mimetype="text/plain")
