"""Native libraries that must be loaded a particular way inside a host process (Orthanc).

Orthanc links DCMTK's CharLS (libdcmtkcharls), which exports functions named as CharLS's own
(JpegLsEncode, JpegLsDecode, ...) for an older CharLS. Orthanc's Python plugin loads libpython
globally, so pyjpegls's extension, loaded later, would call DCMTK's copies and crash Orthanc on
the first JPEG-LS object. Loaded with RTLD_DEEPBIND, the extension prefers its own symbols.
This module imports nothing else of stegonode: it must run before pydicom loads its plugins.
"""

from __future__ import annotations

import importlib
import os
import sys


def load_charls_apart() -> None:
    """Load pyjpegls's CharLS extension with RTLD_DEEPBIND (before anything imports pydicom's
    pixel plugins); nothing happens when it is already loaded or not installed."""
    if "_CharLS" in sys.modules:
        return
    flags = sys.getdlopenflags()
    sys.setdlopenflags(flags | os.RTLD_DEEPBIND)
    try:
        importlib.import_module("_CharLS")
    except ImportError:
        pass  # pyjpegls absent: JPEG-LS storage then fails at the first object, with its reason
    finally:
        sys.setdlopenflags(flags)
