"""The console's HTTP server: waitress in a thread, for ``stegonode serve`` and ``stegonode web``."""

from __future__ import annotations

import ipaddress
import logging
import secrets
import sys
import threading
from typing import Any

from waitress.server import create_server

from stegonode.errors import ConfigError

from .app import create_app
from .auth import Login

log = logging.getLogger("stegonode.web")
MEBIBYTE = 1 << 20


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def login_for(web: dict[str, Any]) -> Login:
    """The login [web] asks for; ConfigError where the console would listen beyond loopback
    without one, or a password login has no hash."""
    mode = web["login"]
    if mode == "password" and not web["password_hash"]:
        raise ConfigError('web.login = "password" needs web.password_hash '
                          "(make one with 'stegonode web --hash-password')")
    if mode == "none" and not is_loopback(web["bind_address"]):
        raise ConfigError(
            f"web.bind_address = {web['bind_address']!r} is beyond loopback and web.login = \"none\": "
            'the console listens there only with a login; set web.login = "password" '
            '(with web.password_hash) or "token", or bind it to 127.0.0.1'
        )
    if mode == "token":
        return Login("token", secrets.token_urlsafe(24))
    return Login(mode, web["password_hash"])


class Console:
    """The console bound to [web] bind_address:port (binding happens here, serving in start())."""

    def __init__(self, config: dict[str, Any]) -> None:
        web = config["web"]
        self.login = login_for(web)
        # Uploads, the peer's key file and re-identified downloads stay in memory: waitress would
        # spool larger requests and responses to temporary files.
        in_memory = 2 * web["max_upload_mb"] * MEBIBYTE + MEBIBYTE
        try:
            self.server = create_server(
                create_app(config, self.login), host=web["bind_address"], port=web["port"], threads=4,
                ident="stegonode", max_request_body_size=in_memory, inbuf_overflow=in_memory,
                outbuf_overflow=in_memory, outbuf_high_watermark=in_memory + MEBIBYTE,
            )
        except OSError as exc:
            raise ConfigError(f"web.bind_address/web.port {web['bind_address']}:{web['port']}: "
                              f"cannot listen ({exc.strerror or exc})") from None
        host = web["bind_address"]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{web['port']}/"
        self._thread = threading.Thread(target=self.server.run, name="stegonode-web", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("web console on %s (login: %s)", self.url, self.login.mode)
        if self.login.mode == "token":
            # On the terminal of whoever started the node, like a notebook server's token; it
            # opens the console until the node stops.
            print(f"stegonode: web console login token: {self.login.secret}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self.server.task_dispatcher.shutdown()
        self.server.close()
        self._thread.join(timeout=5)
