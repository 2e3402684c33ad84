"""The node's dashboard: queue, throughput, quarantine, associations (studies: studypages.py)."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, abort, current_app, render_template

from stegonode.errors import StegonodeError
from stegonode.node.index import quarantine_location

from .app import ConsoleState

bp = Blueprint("nodepages", __name__)
PLOT = {"width": 600, "height": 120, "minutes": 60}


def _state() -> ConsoleState:
    return current_app.extensions["stegonode"]


def _index_or_reason():
    try:
        return _state().index(), None
    except StegonodeError as exc:
        return None, str(exc)


def _throughput_bars(per_minute: list[int]) -> list[dict[str, float]]:
    """SVG bars of the per-minute counts, oldest on the left, scaled to the busiest minute."""
    width, height = PLOT["width"], PLOT["height"]
    step = width / len(per_minute)
    top = max(max(per_minute), 1)
    bars = []
    for minute, count in enumerate(per_minute):
        h = height * count / top
        bars.append({"x": round(minute * step + 1, 1), "y": round(height - h, 1), "w": round(step - 2, 1),
                     "h": round(h, 1), "count": count, "ago": len(per_minute) - minute})
    return bars


@bp.route("/dashboard")
def dashboard():
    index, reason = _index_or_reason()
    if index is None:
        return render_template("dashboard.html", reason=reason)
    per_minute = index.processed_per_minute(PLOT["minutes"])
    storage = _state().storage()
    return render_template(
        "dashboard.html", reason=None, counts=index.counts(), carriers=index.carriers(),
        bars=_throughput_bars(per_minute),
        plot=PLOT, last_hour=sum(per_minute),
        quarantined=[(quarantine_location(storage, job), job["reason"]) for job in index.quarantined_jobs()],
        associations=index.recent_associations(), when=_when,
    )


@bp.route("/dashboard.json")
def dashboard_counts():
    """What ``stegonode status --json`` prints."""
    index, reason = _index_or_reason()
    if index is None:
        abort(404, reason)
    return index.counts()


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")
