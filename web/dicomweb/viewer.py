"""The OHIF viewer under ``/viewer``: the prebuilt ``dist/`` of npm's ``@ohif/app`` (MIT), which
scripts/setup.sh installs without building, served as it ships with three adaptations made on
the way out:

- ``app-config.js`` is ours: one DICOMweb data source, this node's ``/dicomweb``.
- The build expects to be served at ``/``: ``index.html``'s absolute paths and webpack's public
  path (``__webpack_require__.p = "/"`` in the bundles that load chunks) are moved under
  ``/viewer/``, which OHIF otherwise needs a rebuild with ``PUBLIC_URL`` for.
- Its own Content-Security-Policy (OHIF runs inline start-up scripts, WebAssembly codecs and
  blob: workers, which the console's policy forbids) and caching of its hashed bundles.

The viewer is behind the console's login like every page; its DICOMweb requests carry the
login session.
"""

from __future__ import annotations

import mimetypes
import re
from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, abort, request
from werkzeug.utils import safe_join

from . import OHIF_VERSION, current_settings

bp = Blueprint("viewer", __name__, url_prefix="/viewer")
PREFIX = "/viewer/"
PUBLIC_PATH = re.compile(rb'__webpack_require__\.p = "/";')
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval' blob:; "
    "worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self' data: blob:; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
APP_CONFIG = """// stegonode: OHIF reads this node's DICOMweb (the protected studies), nothing else.
window.config = {
  routerBasename: '/viewer',
  showStudyList: true,
  extensions: [],
  modes: [],
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  investigationalUseDialog: { option: 'never' },
  defaultDataSourceName: 'stegonode',
  dataSources: [{
    namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
    sourceName: 'stegonode',
    configuration: {
      friendlyName: 'stegonode (protected studies)',
      name: 'stegonode',
      wadoUriRoot: window.location.origin + '/dicomweb',
      qidoRoot: window.location.origin + '/dicomweb',
      wadoRoot: window.location.origin + '/dicomweb',
      qidoSupportsIncludeField: true,
      supportsReject: false,
      imageRendering: 'wadors',
      thumbnailRendering: 'wadors',
      enableStudyLazyLoad: true,
      supportsFuzzyMatching: true,
      supportsWildcard: true,
      staticWado: false,
      singlepart: 'video,pdf',
      omitQuotationForMultipartRequest: true,
      bulkDataURI: { enabled: true },
    },
  }],
};
"""


def viewer_dir() -> Path:
    folder = current_settings().viewer_dir
    if not (folder / "index.html").is_file():
        abort(404, f"the OHIF viewer ({OHIF_VERSION}) is not installed at {folder}: run scripts/setup.sh --viewer")
    return folder


@lru_cache(maxsize=64)
def _adapted(path: Path, mtime: float) -> bytes:
    """The file's bytes, moved from ``/`` to ``/viewer/`` where the build names its root."""
    data = path.read_bytes()
    if path.name == "index.html":
        data = data.replace(b'window.PUBLIC_URL="/"', f'window.PUBLIC_URL="{PREFIX}"'.encode())
        # the manifest is fetched without cookies unless asked: behind the login it would be refused
        data = data.replace(b'<link rel="manifest"', b'<link rel="manifest" crossorigin="use-credentials"')
        return re.sub(rb'(src|href)="/(?!/)', lambda m: m.group(1) + b'="' + PREFIX.encode(), data)
    if path.suffix == ".css":
        return re.sub(rb"url\(/(?!/)", b"url(" + PREFIX.encode(), data)
    return PUBLIC_PATH.sub(f'__webpack_require__.p = "{PREFIX}";'.encode(), data)


@bp.get("/")
@bp.get("/<path:name>")
def serve(name: str = "index.html") -> Response:
    if name == "app-config.js":
        return Response(APP_CONFIG, 200, mimetype="text/javascript")
    folder = viewer_dir()
    found = safe_join(str(folder), name)
    path = Path(found) if found else None
    if path is None or not path.is_file():
        if "." in name.rsplit("/", 1)[-1]:
            abort(404)
        path = folder / "index.html"  # the viewer's own routes (/viewer/viewer?StudyInstanceUIDs=...)
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if path.suffix == ".wasm":
        mime = "application/wasm"
    if path.name == "index.html" or path.suffix in (".js", ".mjs", ".css"):
        return Response(_adapted(path, path.stat().st_mtime), 200, mimetype=mime)
    return Response(path.read_bytes(), 200, mimetype=mime)


def headers(response: Response) -> Response:
    """After the console's own headers: the viewer's policy, and its bundles cached."""
    if request.blueprint != "viewer":
        return response
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if response.status_code == 200 and re.search(r"\.[0-9a-f]{8,}\.|\.(wasm|woff2|png|svg|css)$", request.path):
        response.headers["Cache-Control"] = "private, max-age=86400"
    return response
