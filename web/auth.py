"""Login: none (loopback only), an admin password whose hash is in node.toml, or a start token."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

from stegonode.node import audit

log = logging.getLogger("stegonode.web")
bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "static"}
OWN_LOGIN_BLUEPRINTS = {"dicomweb"}  # it takes a bearer token too (web/dicomweb)


@dataclass(frozen=True)
class Login:
    """``mode`` none, password or token; ``secret`` the password hash or the token."""

    mode: str
    secret: str

    def accepts(self, given: str) -> bool:
        if self.mode == "token":
            return secrets.compare_digest(given.encode(), self.secret.encode())
        if self.mode == "password":
            return bool(given) and check_password_hash(self.secret, given)
        return True


def current_login() -> Login:
    return current_app.extensions["stegonode"].login


def require_login():
    """before_request: pages redirect to the login page, everything else answers 401."""
    login = current_login()
    if login.mode == "none" or request.endpoint in OPEN_ENDPOINTS or session.get("signed_in") \
            or request.blueprint in OWN_LOGIN_BLUEPRINTS:
        return None
    if request.method == "GET" and request.accept_mimetypes.accept_html and request.endpoint:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(401)


def _safe_next(target: str | None) -> str:
    """Only a path on this console (no scheme, no host) is followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return url_for("pages.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    login = current_login()
    if login.mode == "none":
        return redirect(url_for("pages.index"))
    error, status = None, 200
    if request.method == "POST":
        error, status = _attempt(login)
        if error is None:
            return redirect(_safe_next(request.args.get("next")))
    response = current_app.make_response((render_template("login.html", mode=login.mode, error=error), status))
    if status == 429:
        response.headers["Retry-After"] = error.rsplit(" ", 2)[-2] if error else "1"
    return response


def _attempt(login: Login) -> tuple[str | None, int]:
    """Check one login attempt under the throttle, audited: (error or None, HTTP status)."""
    state = current_app.extensions["stegonode"]
    address = request.remote_addr or "unknown"
    verdict = state.throttle.before(address)
    if verdict.lock_ended:
        log.warning("console login lock of %s ended", address)
        state.audit.record(audit.Event("login-unlock", user="console", address=address, detail="login lock ended"))
    if verdict.refused is None and login.accepts(request.form.get("secret", "")):
        state.throttle.succeeded(address)
        state.audit.record(audit.Event("login", user="console", address=address))
        session.clear()  # a fresh session: nothing from before the login carries over
        session["signed_in"] = True
        return None, 200
    if verdict.refused == "locked":
        state.audit.record(audit.Event("login", "failure", "console", address, detail="refused: address locked"))
        return f"too many failed logins from this address: locked, try again in {verdict.wait_seconds} s", 429
    failures, locked = state.throttle.failed(address)
    reason = "wrong password" if login.mode == "password" else "wrong token"
    if verdict.refused == "wait":
        reason = "too soon after a failed login"
    log.warning("console login failed from %s: %s (%d in a row)", address, reason, failures)
    state.audit.record(audit.Event("login", "failure", "console", address, detail=reason))
    if locked:
        log.warning("console login locked for %s after %d failures", address, failures)
        state.audit.record(audit.Event("login-lock", "serious", "console", address,
                                       detail=f"locked after {failures} failed logins"))
        return f"{reason}; too many failed logins from this address: locked, " \
               f"try again in {max(1, round(state.throttle.lock_seconds))} s", 429
    if verdict.refused == "wait":
        return f"{reason}: wait, try again in {verdict.wait_seconds} s", 429
    return reason, 401


@bp.route("/logout", methods=["POST"])
def logout():
    if session.get("signed_in"):
        current_app.extensions["stegonode"].audit.record(
            audit.Event("logout", user="console", address=request.remote_addr or "unknown"))
    session.clear()
    return redirect(url_for("auth.login"))
