"""Packing an agent's folder into a bundle (``.tar.gz``), as ``agentd agents deploy`` does.

The rules are the CLI's (``crates/agentd-bundle/src/pack.rs``): paths relative to the
folder, no ``./`` prefix, entries sorted by name, mtime 0, uid/gid 0, modes ``0755`` for
folders and executables and ``0644`` otherwise, so the same folder packs to the same bytes.
``.git`` (folder or file) and ``__pycache__`` folders are skipped at any depth;
``node_modules`` is kept. Symlinks are kept when their target is relative and stays inside
the folder, refused otherwise; sockets, fifos and devices are refused.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
from typing import Any, Dict, List, Optional

SKIPPED_DIRS = (".git", "__pycache__")


class BundleError(ValueError):
    """The folder cannot be packed as a bundle."""


def pack_dir(path: str) -> bytes:
    """The folder at ``path`` as a reproducible ``.tar.gz``."""
    if not os.path.isdir(path):
        raise BundleError(f"{path} is not a folder")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add_folder(tar, path, "")
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _info(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _add_folder(tar: tarfile.TarFile, folder: str, prefix: str) -> None:
    names = sorted(os.listdir(folder), key=lambda n: n.encode("utf-8", "surrogateescape"))
    for name in names:
        full = os.path.join(folder, name)
        st = os.lstat(full)
        inside = f"{prefix}/{name}" if prefix else name
        try:
            inside.encode("utf-8")
        except UnicodeEncodeError:
            raise BundleError(f"{full}: the name is not valid UTF-8") from None
        if name == ".git" or (stat.S_ISDIR(st.st_mode) and name in SKIPPED_DIRS):
            continue
        if stat.S_ISDIR(st.st_mode):
            tar.addfile(_info(inside + "/", tarfile.DIRTYPE, 0o755))
            _add_folder(tar, full, inside)
        elif stat.S_ISREG(st.st_mode):
            mode = 0o755 if st.st_mode & 0o111 else 0o644
            with open(full, "rb") as f:
                content = f.read()
            tar.addfile(_info(inside, tarfile.REGTYPE, mode, len(content)), io.BytesIO(content))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            _check_link(prefix, inside, target)
            info = _info(inside, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
        else:
            raise BundleError(f"{inside}: a special file (socket, fifo or device) cannot be packed")


def _check_link(folder: str, inside: str, target: str) -> None:
    if target == "" or target.startswith("/"):
        raise BundleError(f"{inside} -> {target}: a link must have a relative target")
    depth = [p for p in folder.split("/") if p]
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not depth:
                raise BundleError(f"{inside} -> {target}: the link points outside the folder")
            depth.pop()
        else:
            depth.append(part)


def read_manifest(path: str) -> Dict[str, Any]:
    """The top-level keys of ``<path>/agent.toml`` the client needs (``name``, ``description``, ``tags``).

    With Python ≥ 3.11 this is ``tomllib``; before, a small reader of top-level
    ``key = "string"`` and ``key = ["a", "b"]`` lines (the server checks the manifest fully).
    """
    file = os.path.join(path, "agent.toml")
    try:
        with open(file, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise BundleError(f"{path} has no agent.toml: an agent folder needs one at its root") from None
    try:
        import tomllib  # type: ignore[import-not-found]
    except ImportError:
        return _read_top_level(raw.decode("utf-8"))
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise BundleError(f"{file}: {e}") from None


_STRING = r'"((?:[^"\\]|\\.)*)"'


def _read_top_level(text: str) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            break
        m = re.match(r"^([A-Za-z0-9_-]+)\s*=\s*(.*)$", line)
        if not m:
            continue
        key, value = m.group(1), m.group(2)
        s = re.match("^" + _STRING, value)
        if s:
            out[key] = _unescape(s.group(1))
        elif value.startswith("["):
            out[key] = [_unescape(x) for x in re.findall(_STRING, value)]
    return out


def _unescape(s: str) -> str:
    return re.sub(r'\\(["\\])', r"\1", s)


def slugify(name: str) -> Optional[str]:
    """A slug from a manifest name, as the CLI derives it (``My Agent v2!`` → ``my-agent-v2``)."""
    out: List[str] = []
    for c in name.lower():
        if ("a" <= c <= "z") or ("0" <= c <= "9"):
            out.append(c)
        elif out and out[-1] != "-":
            out.append("-")
    slug = "".join(out)[:63].rstrip("-")
    return slug or None


__all__ = ["BundleError", "pack_dir", "read_manifest", "slugify"]
