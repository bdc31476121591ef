"""Dossier files (HO_SO_TEP): their content, and the copies kept on disk.

TS24 keeps a file's content either in the NOI_DUNG blob or on disk under the
site's attachment folder at DUONG_DAN, with its size and MD5 in the row. PDF
contents here always hold NUL bytes and bytes that are not UTF-8, so every
stage that moves blobs must keep them as bytes.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

# Form codes by procedure: (declaration as XML, supporting document as PDF).
FORMS_BY_PROCEDURE = {
    "600": ("D02-TS", "TK1-TS"),
    "600a": ("D02-TS", "TK1-TS"),
    "600b": ("D02-TS", "TK1-TS"),
    "630a": ("C70a-HD", "GCN-NGHI-OM"),
    "630b": ("C70a-HD", "GCN-NGHI-OM"),
    "602": ("D01-TS", "TK1-TS"),
    "612": ("D01-TS", "TK1-TS"),
    "616": ("TK3-TS", "TK1-TS"),
}
FILE_TITLES = {
    "D02-TS": "Danh sách lao động tham gia BHXH, BHYT, BHTN",
    "C70a-HD": "Danh sách đề nghị giải quyết hưởng chế độ ốm đau",
    "D01-TS": "Tờ khai đơn vị tham gia, điều chỉnh thông tin BHXH",
    "TK3-TS": "Tờ khai đăng ký, điều chỉnh đóng BHXH",
    "TK1-TS": "Tờ khai tham gia, điều chỉnh thông tin BHXH, BHYT",
    "GCN-NGHI-OM": "Giấy chứng nhận nghỉ việc hưởng BHXH",
}
# Vietnamese file-name stems on disk: backups must keep them byte for byte.
DISK_STEMS = ("tờ_khai", "danh_sách_lao_động", "giấy_chứng_nhận", "hồ_sơ_đính_kèm")
PDF_HEADER = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"  # the usual binary marker line: not UTF-8


def xml_content(dossier_no: str, procedure: str, period: str, unit: str, form: str, note: str) -> bytes:
    text = (
        f'<?xml version="1.0" encoding="utf-8"?>\n'
        f"<HoSo soHoSo={quoteattr(dossier_no)} maThuTuc={quoteattr(procedure)} "
        f"kyKeKhai={quoteattr(period)}>\n"
        f"  <DonVi maDonVi={quoteattr(unit)}/>\n"
        f"  <ToKhai ma={quoteattr(form)}>{escape(FILE_TITLES[form])}</ToKhai>\n"
        f"  <GhiChu>{escape(note)}</GhiChu>\n"
        f"</HoSo>\n"
    )
    return text.encode("utf-8")


def pdf_content(rng: random.Random) -> bytes:
    body = rng.randbytes(rng.randint(200, 1200))
    return PDF_HEADER + body + b"\n\x00\xff\xfe trailer\n%%EOF\n"


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


@dataclass
class AttachmentFolder:
    """Writes file copies under the site's attachment folder and counts them."""

    root: Path
    files_written: int = 0
    bytes_written: int = 0
    _made: set[Path] = field(default_factory=set)

    def write(self, relative_path: str, content: bytes) -> None:
        path = self.root / relative_path
        if path.parent not in self._made:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made.add(path.parent)
        with open(path, "xb") as handle:  # "x": a generator never overwrites a file
            handle.write(content)
        self.files_written += 1
        self.bytes_written += len(content)


def corrupted(content: bytes) -> bytes:
    """Same size, one byte changed: only the MD5 can tell (a silently damaged file)."""
    damaged = bytearray(content)
    damaged[len(damaged) // 2] ^= 0x20
    return bytes(damaged)
