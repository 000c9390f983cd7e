"""Reading an EPUB's spine and members straight from its zip, for the in-browser reader.

Framework-free.  Members are looked up by their exact name in the zip's own
list, never by joining a path on disk, so a hostile name reaches nothing
outside the book.  A broken book raises ``EdgenodeError('E_EPUB')``.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ET
import zipfile
from functools import lru_cache
from pathlib import Path

from edgenode.core.errors import EdgenodeError

MAX_MEMBER = 20 * 1024 * 1024
TYPES = {".xhtml": "application/xhtml+xml", ".html": "text/html", ".htm": "text/html", ".css": "text/css",
         ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
         ".svg": "image/svg+xml", ".webp": "image/webp"}
_NS = {"c": "urn:oasis:names:tc:opendocument:xmlns:container", "opf": "http://www.idpf.org/2007/opf"}


def _broken(why: str) -> EdgenodeError:
    return EdgenodeError("E_EPUB", f"cannot read this EPUB: {why}", zh="这本电子书无法在线阅读，请下载后阅读", status=422)


@lru_cache(maxsize=32)
def spine(path: Path) -> tuple[str, ...]:
    """Member names of the reading order.  Cached per blob path: blobs never change."""
    try:
        with zipfile.ZipFile(path) as z:
            container = ET.fromstring(z.read("META-INF/container.xml"))
            rootfile = container.find(".//c:rootfile", _NS)
            opf_name = rootfile.get("full-path") if rootfile is not None else None
            if not opf_name:
                raise _broken("no rootfile in META-INF/container.xml")
            opf = ET.fromstring(z.read(opf_name))
            base = posixpath.dirname(opf_name)
            manifest = {i.get("id"): posixpath.normpath(posixpath.join(base, i.get("href", "")))
                        for i in opf.iterfind(".//opf:manifest/opf:item", _NS)}
            names = set(z.namelist())
            items = [manifest.get(ref.get("idref")) for ref in opf.iterfind(".//opf:spine/opf:itemref", _NS)]
    except (zipfile.BadZipFile, KeyError, ET.ParseError, OSError) as e:
        raise _broken(str(e)[:100]) from None
    chapters = tuple(i for i in items if i and i in names)
    if not chapters:
        raise _broken("the spine lists no chapters")
    return chapters


def member(path: Path, name: str) -> tuple[bytes, str]:
    """One member's bytes and type; only names the zip itself lists, of known types."""
    ext = posixpath.splitext(name)[1].lower()
    if ext not in TYPES:
        raise EdgenodeError("E_NOT_FOUND", f"no such part {name[:60]!r}", zh="没有找到这个页面", status=404)
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo(name)
            if info.file_size > MAX_MEMBER:
                raise _broken(f"{name} is too large")
            return z.read(info), TYPES[ext]
    except KeyError:
        raise EdgenodeError("E_NOT_FOUND", f"no such part {name[:60]!r}", zh="没有找到这个页面", status=404) from None
    except (zipfile.BadZipFile, OSError) as e:
        raise _broken(str(e)[:100]) from None
