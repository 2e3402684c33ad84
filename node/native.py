"""Native libraries: loaded a particular way inside a host process (Orthanc); the C allocator.

Orthanc links DCMTK's CharLS (libdcmtkcharls), which exports functions named as CharLS's own
(JpegLsEncode, JpegLsDecode, ...) for an older CharLS. Orthanc's Python plugin loads libpython
globally, so pyjpegls's extension, loaded later, would call DCMTK's copies and crash Orthanc on
the first JPEG-LS object. Loaded with RTLD_DEEPBIND, the extension prefers its own symbols.
This module imports nothing else of stegonode: it must run before pydicom loads its plugins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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


def release_memory() -> None:
    """Give the memory a large object took back to the system: free what only cycles hold,
    then have glibc return its free heap pages (``malloc_trim``); numpy's large arrays come
    from that heap once glibc has raised its mmap threshold. No-op on other C libraries."""
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return
    trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
    if trim is not None:
        trim(0)
