"""The console's HTTP server: waitress in a thread, for ``stegonode serve`` and ``stegonode web``."""

from __future__ import annotations

import logging
import secrets
import sys
import threading

from waitress.server import create_server

from stegonode.errors import ConfigError
from stegonode.node.config import Config, WebSettings

from .app import create_app
from .auth import Login

log = logging.getLogger("stegonode.web")
MEBIBYTE = 1 << 20


def login_for(web: WebSettings) -> Login:
    """The login ``[web]`` asks for; its rules (a login beyond loopback, a password's hash) are
    node.toml's, checked when it is read (:class:`stegonode.node.config.WebSettings`)."""
    if web.login == "token":
        return Login("token", secrets.token_urlsafe(24))
    return Login(web.login, web.password_hash)


class Console:
    """The console bound to [web] bind_address:port (binding happens here, serving in start())."""

    def __init__(self, config: Config) -> None:
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
