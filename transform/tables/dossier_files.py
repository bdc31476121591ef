"""HO_SO_TEP -> dossier_files, with the content read and checked.

Content comes from NOI_DUNG when the database kept it, else from the file at
DUONG_DAN under the site's attachment folder. Either way it must match the
legacy MD5, since that checksum is the only proof the content is the one
the dossier referred to.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from ..context import TransformContext
from ..mappings import FILE_TYPES
from .common import TableBatch

LEGACY_TABLE = "HO_SO_TEP"
TARGET_TABLE = "dossier_files"
KEY_COLUMNS = ("ID_TEP",)
LEGACY_COLUMNS = (
    "ID_TEP",
    "ID_HO_SO",
    "MA_TO_KHAI",
    "TEN_TEP",
    "LOAI_TEP",
    "NOI_DUNG",
    "DUONG_DAN",
    "KICH_THUOC",
    "MD5",
)
# Which target column each legacy column becomes.
COLUMN_MAP = {
    "ID_HO_SO": "legacy_dossier_id",
    "MA_TO_KHAI": "form_code",
    "TEN_TEP": "file_name",
    "LOAI_TEP": "file_type",
    "NOI_DUNG": "content",
    "DUONG_DAN": "content",
    "KICH_THUOC": "size_bytes",
    "MD5": "md5",
}
_DRIVE = re.compile(r"[A-Za-z]:")  # a Windows drive letter: C:\TS24\... or C:TS24\...
OUTPUT_COLUMNS = (
    "legacy_dossier_id",
    "form_code",
    "file_name",
    "file_type",
    "content",
    "size_bytes",
    "md5",
    "sha256",
    "dq_flags",
)
# remember() reads nothing: a resumed load reads none of the files back.
REMEMBERED_COLUMNS: tuple[str, ...] = ()
# Whose remembered rows this table's transform consults: what a resumed load must seed before it.
CONSULTS = ("HO_SO",)  # the accepted dossiers (orphans)


class AttachmentProblem(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class AttachmentFolder:
    """The site's attachment folder, resolving DUONG_DAN paths inside it.

    Resolving a path (following every symbolic link on the way) costs a system
    call per component; tens of thousands of files share a few dozen folders, so
    each folder is resolved once per instance (one batch) and only the file's
    own name is checked for a link. The result is the same as resolving the
    whole path: a file that is a link, or a path with `.` or `..`, is resolved in full.
    Paths are handled as strings (os.path): pathlib objects cost more than the
    file's own read, for the many small files a site holds.
    """

    def __init__(self, attachments_dir: Path):
        self.root = os.path.realpath(attachments_dir)
        self._inside = self.root.rstrip(os.sep) + os.sep
        self._folders: dict[tuple[str, ...], str] = {}

    def path(self, relative: str) -> Path:
        """The file DUONG_DAN names, refusing paths that leave the attachment folder.

        TS24 ran on Windows, so both separators are accepted; drive letters,
        absolute paths and `..` that climb out of the folder (also through a
        symbolic link) are refused.
        """
        return Path(self._resolved(relative))

    def _resolved(self, relative: str) -> str:
        if "\x00" in relative:
            raise AttachmentProblem("ATTACHMENT_PATH_INVALID", f"path {relative!r} holds a NUL character")
        unified = relative.replace("\\", "/")
        if unified.startswith("/") or _DRIVE.match(unified):  # also \\server\share and C:relative
            raise AttachmentProblem("ATTACHMENT_PATH_INVALID", f"path {relative!r} is absolute")
        parts = [part for part in unified.split("/") if part]
        candidate = None
        if parts and "." not in parts and ".." not in parts:
            folder_parts = tuple(parts[:-1])
            folder = self._folders.get(folder_parts)
            if folder is None:
                folder = self._folders[folder_parts] = os.path.realpath(os.path.join(self.root, *folder_parts))
            candidate = os.path.join(folder, parts[-1])
            if os.path.islink(candidate):
                candidate = None
        if candidate is None:
            candidate = os.path.realpath(os.path.join(self.root, *parts))
        if candidate != self.root and not candidate.startswith(self._inside):
            raise AttachmentProblem("ATTACHMENT_PATH_INVALID", f"path {relative!r} leaves the attachment folder")
        return candidate

    def read(self, relative: str) -> bytes:
        path = self._resolved(relative)
        try:
            with open(path, "rb", buffering=0) as file:  # unbuffered: one read, a third of read_bytes' cost
                return file.readall()
        except FileNotFoundError:
            raise AttachmentProblem("ATTACHMENT_MISSING", f"{relative!r} is not in the attachment folder") from None
        except (IsADirectoryError, PermissionError, OSError) as exc:
            raise AttachmentProblem("ATTACHMENT_MISSING", f"{relative!r} cannot be read: {exc.strerror}") from None


def attachment_path(attachments_dir: Path, relative: str) -> Path:
    """AttachmentFolder(attachments_dir).path(relative), for one path."""
    return AttachmentFolder(attachments_dir).path(relative)


def read_attachment(attachments_dir: Path | None, relative: str, folder: AttachmentFolder | None = None) -> bytes:
    if attachments_dir is None:
        raise AttachmentProblem("ATTACHMENT_MISSING", f"{relative!r} is on disk but no attachment folder was given")
    return (folder or AttachmentFolder(attachments_dir)).read(relative)


def transform(tb: TableBatch) -> dict[str, list[Any]]:
    v, ctx = tb.verdicts, tb.ctx
    ids = tb.integers("ID_TEP")
    tb.reject_where("ID_TEP", [i is None for i in ids], "KEY_MISSING", "file id {value!r} is not a number")
    dossier_ids = tb.dossier_ids()
    names = tb.text("TEN_TEP")
    tb.require("TEN_TEP", names)
    file_types = tb.code("LOAI_TEP", case="lower")
    for i, file_type in enumerate(file_types):
        if file_type is not None and file_type not in FILE_TYPES:
            v.flag(i, "FILE_TYPE_UNKNOWN", "LOAI_TEP", tb.raw("LOAI_TEP")[i], file_type)

    blobs = tb.raw("NOI_DUNG")
    paths = tb.plain("DUONG_DAN")
    legacy_md5 = tb.code("MD5", case="lower", flag=False)
    legacy_sizes = tb.integers("KICH_THUOC")
    folder = AttachmentFolder(ctx.attachments_dir) if ctx.attachments_dir is not None else None
    contents: list[bytes | None] = []
    md5s: list[str | None] = []
    sha256s: list[str | None] = []
    sizes: list[int | None] = []
    for i in range(tb.n):
        content = md5 = sha256 = size = None
        if not v.is_rejected(i):  # no disk reads for rows already rejected
            try:
                if blobs[i] is not None:
                    content = bytes(blobs[i])
                elif paths[i] is not None:
                    content = read_attachment(ctx.attachments_dir, paths[i], folder)
                else:
                    raise AttachmentProblem("ATTACHMENT_MISSING", "neither NOI_DUNG nor DUONG_DAN holds the content")
                md5 = hashlib.md5(content, usedforsecurity=False).hexdigest()
                if legacy_md5[i] is None:
                    v.flag(i, "ATTACHMENT_MD5_MISSING", "MD5", tb.raw("MD5")[i], md5)
                elif legacy_md5[i] != md5:
                    raise AttachmentProblem(
                        "ATTACHMENT_MD5_MISMATCH", f"content MD5 {md5} differs from the legacy MD5 {legacy_md5[i]}"
                    )
                sha256 = hashlib.sha256(content).hexdigest()
                size = len(content)
                if legacy_sizes[i] != size:
                    v.flag(i, "ATTACHMENT_SIZE_MISMATCH", "KICH_THUOC", tb.raw("KICH_THUOC")[i], size)
            except AttachmentProblem as problem:
                field = (
                    "MD5"
                    if problem.code == "ATTACHMENT_MD5_MISMATCH"
                    else ("DUONG_DAN" if paths[i] is not None and blobs[i] is None else "NOI_DUNG")
                )
                v.reject(i, problem.code, field, tb.raw(field)[i], str(problem))
                content = md5 = sha256 = size = None
        contents.append(content)
        md5s.append(md5)
        sha256s.append(sha256)
        sizes.append(size)

    # Form codes keep their case: the official forms are written `C70a-HD`, `D02-TS`.
    return {
        "legacy_dossier_id": dossier_ids,
        "form_code": tb.code("MA_TO_KHAI", case="keep"),
        "file_name": names,
        "file_type": file_types,
        "content": contents,
        "size_bytes": sizes,
        "md5": md5s,
        "sha256": sha256s,
    }


def remember(ctx: TransformContext, rows: pd.DataFrame) -> None:
    """Nothing depends on files, and their integer keys cannot collide."""
