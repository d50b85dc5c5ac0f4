"""The URLs one file is tried from: --mirror first, then the catalog's, optionally re-based.

DEEPVIS_FETCH_BASE_URL re-bases every catalog URL onto one server, keeping host and
path: with base http://127.0.0.1:8000/m, http://dl.caffe.berkeleyvision.org/x.caffemodel
becomes http://127.0.0.1:8000/m/dl.caffe.berkeleyvision.org/x.caffemodel. That is the
layout `wget --mirror` (or `wget -x`) writes, so an internal mirror of the original hosts,
or a test server, stands in for all of them without editing the catalog.
"""
from __future__ import annotations

import os
import posixpath
import urllib.parse

from .catalog import RemoteFile

BASE_URL_ENV = "DEEPVIS_FETCH_BASE_URL"


def rebase(url: str, base: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{base.rstrip('/')}/{parts.netloc}{parts.path}"


def published_name(remote: RemoteFile) -> str:
    """The file name on the canonical host, which a --mirror folder is expected to use."""
    return posixpath.basename(urllib.parse.urlsplit(remote.urls[0]).path)


def candidate_urls(remote: RemoteFile, mirror: str | None = None,
                   base: str | None = None) -> list[str]:
    base = os.environ.get(BASE_URL_ENV) if base is None else base
    urls = [rebase(url, base) for url in remote.urls] if base else list(remote.urls)
    if mirror:
        urls.insert(0, f"{mirror.rstrip('/')}/{published_name(remote)}")
    return list(dict.fromkeys(urls))
