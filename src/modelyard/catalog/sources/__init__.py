"""Discovery sources: where model files are found, before anything is read from them.

Each source (``hf``, ``ollama``, ``folders``, plus the bundled default model) returns a
``SourceScan``: the files it found, each with its resolved identity and the facts only that
source knows (an HF repo and revision, an Ollama ``name:tag``), and the warnings it met. A
source never reads a file's contents and never raises for one bad entry: a corrupt cache
entry or an unreadable folder is a warning, a file that cannot even be stat'ed is a
``FoundFile`` with ``error`` set.

File names are bytes; Python shows the bytes that are not UTF-8 as lone surrogates
(``surrogateescape``), which SQLite, JSON responses and the terminal refuse. So a path that is
not UTF-8 is never passed on as it is: ``found_file`` lists such a file under its name with
those bytes written as escapes (``x-\\xff.gguf``), with ``error`` saying to rename it, and
never opens it.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

FileSource = Literal["hf", "ollama", "folder", "default"]

NOT_UTF8 = "the file name is not valid UTF-8 (shown escaped); rename the file to use it"

# Name parts that mark a download still in progress or a temporary copy.
TEMP_MARKERS = frozenset({"incomplete", "part", "partial", "download", "tmp", "crdownload"})


@dataclass(frozen=True)
class FoundFile:
    """One path to a model file, as a source reached it.

    ``dev``/``ino`` identify the resolved file: two paths with the same pair are the same bytes.
    ``error`` is set when the path cannot be used at all (a broken symlink, a FIFO, a missing
    Ollama blob); such a file is listed but never opened.
    """

    path: str
    source: FileSource
    dev: int = 0
    ino: int = 0
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0  # not part of the identity; a chmod changes it, so a rescan notices
    error: str | None = None
    hf_repo: str | None = None
    hf_revision: str | None = None
    hf_refs: tuple[str, ...] = ()
    ollama_name: str | None = None
    ollama_projector: str | None = None  # the path of the projector blob its manifest names
    projector: bool = False  # the source says this file is a vision projector

    @property
    def key(self) -> str:
        """The resolved file's identity, ``dev:ino``; unusable paths are keyed by path."""
        return f"{self.dev}:{self.ino}" if self.error is None else f"path:{self.path}"

    @property
    def name(self) -> str:
        return Path(self.path).name


@dataclass(frozen=True)
class SourceScan:
    """What one source found: its files, and warnings about entries it had to skip."""

    files: tuple[FoundFile, ...] = ()
    warnings: tuple[str, ...] = ()


def is_temporary(name: str) -> bool:
    """True for hidden files and names that mark a partial download (``x.gguf.part``)."""
    if name.startswith("."):
        return True
    return any(part.lower() in TEMP_MARKERS for part in name.split(".")[1:])


def is_gguf_name(name: str) -> bool:
    """A finished GGUF file's name: ends in ``.gguf`` and is not a temporary copy."""
    return name.lower().endswith(".gguf") and not is_temporary(name)


def is_utf8(text: str) -> bool:
    """False when ``text`` holds a lone surrogate: a name whose bytes are not UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def escape_name(text: str) -> str:
    """``text`` with the bytes that are not UTF-8 written as escapes (``\\xff``);
    valid text is returned as it is. The result can be stored, sent and printed."""
    if is_utf8(text):
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that no file name decodes to (from JSON, say)
        return text.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


def found_file(path: str, template: FoundFile) -> FoundFile:
    """Stat ``path`` (following symlinks) into a copy of ``template``. Never raises.

    ``template`` carries the source and its facts. A path that cannot be stat'ed, or that is
    not a regular file, comes back with ``error`` set: reading a FIFO would block the scan
    forever, so such a file is never opened. A path that is not UTF-8 comes back escaped
    (see ``escape_name``), with ``error`` set and not stat'ed: the catalog stores paths as
    text, and this one would poison every later scan. Labels of the template that are not
    UTF-8 (an Ollama name from a folder name) are escaped too.
    """
    template = _printable(template)
    if not is_utf8(path):
        return replace(template, path=escape_name(path), error=NOT_UTF8)
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        reason = "broken symlink" if Path(path).is_symlink() else "no such file"
        return replace(template, path=path, error=reason)
    except OSError as exc:
        return replace(template, path=path, error=f"cannot stat: {exc.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return replace(template, path=path, error=f"not a regular file ({_kind(st.st_mode)})")
    return replace(
        template,
        path=path,
        dev=st.st_dev,
        ino=st.st_ino,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        ctime_ns=st.st_ctime_ns,
    )


def _printable(template: FoundFile) -> FoundFile:
    labels = (template.hf_repo, template.hf_revision, template.ollama_name, *template.hf_refs)
    if all(label is None or is_utf8(label) for label in labels):
        return template
    return replace(
        template,
        hf_repo=_escape_optional(template.hf_repo),
        hf_revision=_escape_optional(template.hf_revision),
        hf_refs=tuple(escape_name(ref) for ref in template.hf_refs),
        ollama_name=_escape_optional(template.ollama_name),
    )


def _escape_optional(text: str | None) -> str | None:
    return None if text is None else escape_name(text)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a file"
