"""Which certificates the client trusts (`verify`), resolved when a client is made.

* `True` (default): the first of the environment variables `SSL_CERT_FILE`,
  `SSL_CERT_DIR`, `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` that is set, else certifi's
  bundle. The environment is read each time a client is made (not once per process).
* `"system"`: the operating system's trust store, through the optional `truststore`
  package (`pip install truststore`); what a company's TLS-inspecting proxy needs when
  its CA is installed in the OS.
* a path: a PEM bundle file, or a directory of hashed certificates.
* an `ssl.SSLContext`: used as given.
* `False`: no verification (tests only; the gateway carries your keys).

Loading a CA bundle costs tens of milliseconds, so the contexts are cached per source:
per file (and its modification time) or directory, one for `"system"`, one for `False`.
"""

from __future__ import annotations

import functools
import os
import ssl
from typing import Union

from ._errors import RequestValidationError

__all__ = ["CA_ENV_VARS", "Verify", "tls_context"]

Verify = Union[bool, str, "os.PathLike[str]", ssl.SSLContext]
"""What `verify` accepts."""

CA_ENV_VARS = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
"""Environment variables naming a CA bundle, in the order they are read."""


@functools.lru_cache(maxsize=32)
def _from_path(path: str, is_dir: bool, mtime_ns: int) -> ssl.SSLContext:
    # `mtime_ns` is part of the cache key only: a rewritten bundle is loaded again.
    if is_dir:
        return ssl.create_default_context(capath=path)
    return ssl.create_default_context(cafile=path)


def _path_context(path: str, source: str) -> ssl.SSLContext:
    try:
        stat = os.stat(path)
    except OSError:
        raise RequestValidationError(
            f"{source}: no CA bundle at {path!r} (give a PEM file or a certificate directory)"
        ) from None
    is_dir = os.path.isdir(path)
    try:
        return _from_path(path, is_dir, stat.st_mtime_ns)
    except (ssl.SSLError, OSError) as exc:
        raise RequestValidationError(
            f"{source}: {path!r} is not a usable CA bundle: {exc}"
        ) from None


@functools.cache
def _system_context() -> ssl.SSLContext:
    try:
        import truststore
    except ImportError:
        raise RequestValidationError(
            "verify='system' uses the operating system's trust store through the "
            "'truststore' package, which is not installed: pip install truststore"
        ) from None
    return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def _unverified_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_context(verify: Verify = True) -> ssl.SSLContext:
    """The TLS context for a `verify` setting (environment read now); see the module
    docstring. Raises `RequestValidationError` for a missing bundle or a missing
    `truststore`."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is False:
        return _unverified_context()
    if verify is True:
        for name in CA_ENV_VARS:
            value = os.environ.get(name)
            if value:
                return _path_context(value, f"environment variable {name}")
        import certifi  # loaded with the first client, not at import

        return _path_context(certifi.where(), "certifi")
    path = os.fspath(verify)
    if path == "system":
        return _system_context()
    return _path_context(path, "verify")
