"""The web console: protect, reveal, encrypt and decrypt in the browser, and the node's dashboard.

Server-rendered Flask pages served by waitress, every asset shipped in this package. It calls
the same interfaces as the command line (the protect pipeline, reveal, the pixel ciphers, the
index); nothing else depends on it except ``stegonode serve`` and ``stegonode web``.
"""
