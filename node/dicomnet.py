"""The adapter to pynetdicom's private parts: the only module that touches them.

pynetdicom has no public setting for what the node needs here; each use names what it relies
on, and tests/test_dicomnet.py fails loudly when a pynetdicom upgrade changes any of it
(pyproject.toml pins pynetdicom to the series these were checked against):

- ``Association.dul._run_loop_delay``: the DUL's socket polling interval (:func:`poll_fast`);
- ``Association.dul.socket.socket``: the connection's socket (:func:`connection_socket`);
- ``pynetdicom._config.STORE_SEND_CHUNKED_DATASET``: send a file's data set bytes as they are
  (:func:`send_files_as_stored`);
- ``Association.send_c_store``, replaced on one association (:func:`send_files_as_stored`);
- ``AE._servers``: the servers ``AE.shutdown`` stops (:func:`register_server`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from pydicom import Dataset, dcmread
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE

from stegonode.handlers.compression import decompressed

PINNED_SERIES = "3.0."  # the pynetdicom versions this adapter was checked against
POLL_DELAY_S = 0.0001


def connection_socket(assoc: Association) -> socket.socket | None:
    """The association's TCP (or TLS) socket, None once closed."""
    wrapper = getattr(assoc.dul, "socket", None)
    return getattr(wrapper, "socket", None)


def set_nodelay(event: evt.Event) -> None:
    """Answer without waiting on Nagle's algorithm (pynetdicom leaves it on: 6x slower)."""
    sock = connection_socket(event.assoc)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def close_connection(assoc: Association) -> None:
    """Shut the connection's socket: its DUL sees the close and ends the association thread."""
    sock = connection_socket(assoc)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


def poll_fast(event: evt.Event) -> None:
    """Have the association's DUL poll its socket every 0.1 ms instead of pynetdicom's 1 ms.

    A C-STORE, request or response, otherwise waits half a polling interval on average each
    time the DUL found the socket empty: 16% of a 512x512 CT C-MOVE sub-operation, 4-13% of a
    received C-STORE (measured). The price is idle CPU: an association that stays open doing
    nothing costs about 8 points more of one core until the peer releases it or
    ``network_timeout`` ends it. pynetdicom has no public setting for this interval.
    """
    event.assoc.dul._run_loop_delay = POLL_DELAY_S


def send_chunked_datasets() -> None:
    """Process-wide: C-STORE requests given a file path send its data set bytes unchanged."""
    _config.STORE_SEND_CHUNKED_DATASET = True


def send_files_as_stored(assoc: Association, path_of: Callable[[Dataset], str | None]) -> None:
    """Have ``assoc``'s C-STORE sub-operations send a data set for which ``path_of`` gives a
    file path from that file as it is; when the peer accepted no context with the file's
    transfer syntax, the file is decoded, its pixels decompressed, and pynetdicom converts it
    to the uncompressed transfer syntax the peer accepted."""
    send_chunked_datasets()
    send = assoc.send_c_store

    def send_c_store(dataset: Dataset, *args: Any, **kwargs: Any) -> Dataset:
        path = path_of(dataset)
        if path is not None:
            try:
                return send(path, *args, **kwargs)
            except ValueError:  # no accepted context with the file's transfer syntax
                dataset = decompressed(dcmread(path))
        return send(dataset, *args, **kwargs)

    assoc.send_c_store = send_c_store  # type: ignore[method-assign,assignment]


def c_store_request(event: evt.Event) -> C_STORE:
    """The C-STORE request of an ``EVT_C_STORE`` event (pynetdicom types ``event.request`` as
    any DIMSE primitive)."""
    request = event.request
    assert isinstance(request, C_STORE), "not a C-STORE event"
    return request


def register_server(ae: AE, server: Any) -> None:
    """Let ``ae.shutdown()`` stop ``server``, as ``AE.start_server`` does for its own."""
    ae._servers.append(server)
