"""Login: none (loopback only), an admin password whose hash is in node.toml, or a start token."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "static"}


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
    if login.mode == "none" or request.endpoint in OPEN_ENDPOINTS or session.get("signed_in"):
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
    error = None
    if request.method == "POST":
        if login.accepts(request.form.get("secret", "")):
            session.clear()  # a fresh session: nothing from before the login carries over
            session["signed_in"] = True
            return redirect(_safe_next(request.args.get("next")))
        error = "wrong password" if login.mode == "password" else "wrong token"
    status = 401 if error else 200
    return render_template("login.html", mode=login.mode, error=error), status


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))
