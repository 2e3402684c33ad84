"""The audit page: the node's audited events from its index, newest first, with filters."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, render_template, request

from stegonode.errors import StegonodeError
from stegonode.node.audit import EVENTS, OUTCOMES

from .app import ConsoleState

bp = Blueprint("auditpage", __name__)
LIMIT = 200


def _state() -> ConsoleState:
    return current_app.extensions["stegonode"]


@bp.route("/audit")
def audit():
    filters = {name: request.args.get(name, "").strip()[:64] for name in ("kind", "outcome", "user", "address")}
    try:
        events = _state().index().audit_events(**filters, limit=LIMIT)
        reason = None
    except StegonodeError as exc:
        events, reason = [], str(exc)
    for event in events:
        event["when"] = datetime.fromtimestamp(event["at"]).strftime("%Y-%m-%d %H:%M:%S")
    return render_template("audit.html", events=events, reason=reason, filters=filters, limit=LIMIT,
                           kinds=sorted(EVENTS), outcomes=list(OUTCOMES))
