"""Personal data in what the tool shows: masked by one rule per kind of field.

Reports travel to auditors and the servers go back to a private company, so
no report, Data Docs page, artifact or control-store figure shows a person's
identifiers. An example of a rejected or flagged row shows its legacy key, the
field, the reason and the value masked by the rule of the field's kind; a
custodian finds the row in the decrypted backup by its table, key and reason.
For insured persons the legacy key *is* the social insurance number, so it is
masked like one.

| kind | fields (legacy / new system) | rule | example |
|---|---|---|---|
| social insurance number | MA_SO_BHXH / social_insurance_no | first 2 and last 4 characters | `0101234567` -> `01****4567` |
| citizen ID | SO_CCCD / citizen_id | first 2 and last 4 (at least 40 % hidden) | `001085012345` -> `00******2345` |
| name | HO_TEN, NGUOI_LIEN_HE / full_name, contact_name | initials | `Nguyễn Văn Đức` -> `N. V. Đ.` |
| birth date | NGAY_SINH / birth_date | the year only | `15/03/1985` -> `**/**/1985` |
| e-mail | EMAIL / email | first letter and the domain | `nguyen.a@gmail.com` -> `n***@gmail.com` |
| phone | DIEN_THOAI / phone | last 3 digits | `0912345678` -> `*******678` |
| address | DIA_CHI / address | the last part (the province) | `Số 13 Bà Triệu, ..., Hà Nội` -> `***, Hà Nội` |
| officer, account | CAN_BO_XU_LY, NGUOI_THUC_HIEN, TEN_DANG_NHAP / officer, actor | first letter | `cb.hoa` -> `c***` |
| free text, file content | GHI_CHU, NOI_DUNG / notes, note, content | hidden, length only | `(hidden: 42 characters)` |
| secrets, network | MAT_KHAU_HASH, DIA_CHI_IP | hidden | `(hidden)` |
| tax code | MA_SO_THUE / tax_code | shown: an enterprise's tax code is public; a value shaped like a citizen ID (9 or 12 digits) is masked as one | |

Not personal, shown as they are: unit codes and names, office codes and
names, dossier numbers and dates, procedure codes, statuses, file names and
checksums. Surrounding whitespace is kept (it can be the defect shown) and an
empty value stays empty. Every rule is idempotent: masking a masked value
changes nothing, so a report may be masked again when it is rebuilt.

Example::

    mask_value("MA_SO_BHXH", "0101234567")                     # '01****4567'
    mask_legacy_key("NGUOI_LAO_DONG", "0101234567")            # '01****4567'
    mask_example({"legacy_key": "0101234567", "field": "NGAY_SINH", "value": "31/02/1985",
                  "message": "'31/02/1985' is not a date on the calendar"}, table="NGUOI_LAO_DONG")
    # {'legacy_key': '01****4567', 'field': 'NGAY_SINH', 'value': '**/**/1985',
    #  'message': "'**/**/1985' is not a date on the calendar"}
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SOCIAL_INSURANCE_NO = "social insurance number"
CITIZEN_ID = "citizen ID"
NAME = "name"
BIRTH_DATE = "birth date"
EMAIL = "e-mail"
PHONE = "phone"
ADDRESS = "address"
ACCOUNT = "officer or account"
FREE_TEXT = "free text"
HIDDEN = "secret or network address"
TAX_CODE = "tax code"

# Field (legacy or new-system column, any case) -> kind. A field may come qualified (`units.email`).
FIELD_KINDS: dict[str, str] = {
    "ma_so_bhxh": SOCIAL_INSURANCE_NO,
    "social_insurance_no": SOCIAL_INSURANCE_NO,
    "so_cccd": CITIZEN_ID,
    "citizen_id": CITIZEN_ID,
    "ho_ten": NAME,
    "nguoi_lien_he": NAME,
    "full_name": NAME,
    "contact_name": NAME,
    "ngay_sinh": BIRTH_DATE,
    "birth_date": BIRTH_DATE,
    "email": EMAIL,
    "dien_thoai": PHONE,
    "phone": PHONE,
    "dia_chi": ADDRESS,
    "address": ADDRESS,
    "can_bo_xu_ly": ACCOUNT,
    "nguoi_thuc_hien": ACCOUNT,
    "ten_dang_nhap": ACCOUNT,
    "officer": ACCOUNT,
    "actor": ACCOUNT,
    "ghi_chu": FREE_TEXT,
    "noi_dung": FREE_TEXT,
    "notes": FREE_TEXT,
    "note": FREE_TEXT,
    "content": FREE_TEXT,
    "mat_khau_hash": HIDDEN,
    "dia_chi_ip": HIDDEN,
    "ma_so_thue": TAX_CODE,
    "tax_code": TAX_CODE,
}
# Tables (legacy or new system) whose legacy key is itself a personal identifier.
KEY_KINDS: dict[str, str] = {
    "nguoi_lao_dong": SOCIAL_INSURANCE_NO,
    "insured_persons": SOCIAL_INSURANCE_NO,
    "ht_nguoi_dung": ACCOUNT,
}
# Keys of an example that describe it rather than hold a value of the row.
DESCRIPTIVE_KEYS = frozenset(
    {
        "legacy_key",
        "field",
        "reason",
        "reason_code",
        "code",
        "message",
        "table",
        "legacy_table",
        "target_table",
        "target_key",
        "count",
        "rank",
        "action",
        "kind",
    }
)
NULL_KEY_PREFIX = "NULL#"  # a row without key, named by its digest (load): not personal

_HIDDEN_TEXT = re.compile(r"^\(hidden(: [0-9]+ (characters|bytes))?\)$")
_LONG_NUMBER = re.compile(r"(?<![0-9*])[0-9]{9,}(?![0-9])")
_EMAIL = re.compile(r"[^\s'\"<>(),;:]+@[^\s'\"<>(),;:]+")
_DAY_MONTH_YEAR = re.compile(r"(?<![0-9])[0-9]{1,2}[/.-][0-9]{1,2}[/.-][0-9]{4}(?![0-9])")
_YEAR = re.compile(r"(?<![0-9])(1[89][0-9]{2}|2[0-9]{3})(?![0-9])")
_SHORT_YEAR = re.compile(r"(?<=[/.-])[0-9]{2}$")


# -- one rule per kind ---------------------------------------------------------------------------


def _keep_ends(text: str, head: int, tail: int) -> str:
    """`text` with its middle starred: at most `head` and `tail` characters kept, at least 40 % (and 4)
    hidden."""
    n = len(text)
    hidden = max(4, math.ceil(0.4 * n))
    if n <= hidden:
        return "*" * n
    tail = min(tail, n - head - hidden)
    if tail < 0:
        head, tail = n - hidden, 0
    return text[:head] + "*" * (n - head - tail) + text[n - tail :]


def _identifier(text: str) -> str:
    return _keep_ends(text, 2, 4)


def _initials(text: str) -> str:
    initials = []
    for word in text.split():
        first = unicodedata.normalize("NFC", word)[:1]  # a decomposed letter is one letter
        initials.append(f"{first}.")
    return " ".join(initials)


def _birth_date(text: str) -> str:
    year = _YEAR.search(text) or _SHORT_YEAR.search(text)  # dd/mm/yy: the two digits of the year
    keep = range(year.start(), year.end()) if year else range(0)
    return "".join(c if i in keep or not c.isalnum() else "*" for i, c in enumerate(text))


def _first_letter(text: str) -> str:
    """The first character and stars (a star already there stays one: masked twice, the same)."""
    return (text[:1] if text[:1] != "*" else "") + "***"


def _email(text: str) -> str:
    local, at, domain = text.rpartition("@")
    return f"{_first_letter(local)}@{domain}" if at else _first_letter(text)


def _phone(text: str) -> str:
    digits = [i for i, c in enumerate(text) if c.isdigit()]
    shown = set(digits[-3:])
    return "".join("*" if c.isalnum() and i not in shown else c for i, c in enumerate(text))


def _address(text: str) -> str:
    last = text.split(",")[-1].strip() if "," in text else ""
    return f"***, {last}" if last else "***"


def _account(text: str) -> str:
    return _first_letter(text)


def _tax_code(text: str) -> str:
    # Enterprises' tax codes are public; one shaped like a citizen ID may be a person's.
    return _identifier(text) if re.fullmatch(r"[0-9]{9}|[0-9]{12}", text) else text


_RULES: dict[str, Callable[[str], str]] = {
    SOCIAL_INSURANCE_NO: _identifier,
    CITIZEN_ID: _identifier,
    NAME: _initials,
    BIRTH_DATE: _birth_date,
    EMAIL: _email,
    PHONE: _phone,
    ADDRESS: _address,
    ACCOUNT: _account,
    TAX_CODE: _tax_code,
}


def field_kind(field: str | None) -> str | None:
    """The kind of personal data a field holds, or None when it holds none."""
    if not field:
        return None
    return FIELD_KINDS.get(str(field).rsplit(".", 1)[-1].strip().casefold())


def key_kind(table: str | None) -> str | None:
    """The kind of personal data a table's legacy key is, or None."""
    if not table:
        return None
    return KEY_KINDS.get(str(table).rsplit(".", 1)[-1].strip().casefold())


def mask_as(kind: str | None, value: Any) -> Any:
    """`value` masked by the rule of `kind` (None: not personal, returned as it is)."""
    if kind is None or value is None:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"(hidden: {len(bytes(value))} bytes)"
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        value = value.isoformat()
    text = value if isinstance(value, str) else str(value)
    core = text.strip()
    if not core or _HIDDEN_TEXT.match(core):
        return text
    if kind in (FREE_TEXT, HIDDEN):
        return f"(hidden: {len(core)} characters)" if kind == FREE_TEXT else "(hidden)"
    start = len(text) - len(text.lstrip())
    return text[:start] + _RULES[kind](core) + text[start + len(core) :]


def mask_value(field: str | None, value: Any) -> Any:
    """`value` of `field` as a report may show it."""
    return mask_as(field_kind(field), value)


def mask_legacy_key(table: str | None, key: Any) -> Any:
    """A legacy key as a report may show it: masked where the key itself is personal (insured persons)."""
    kind = key_kind(table)
    if kind is None or key is None or str(key).startswith(NULL_KEY_PREFIX):
        return key
    return mask_as(kind, key)


def _literally(replacement: str) -> Callable[[re.Match[str]], str]:
    """A re.sub replacement taken as it is (a mask may hold a backslash or a group reference)."""
    return lambda _match: replacement


def mask_text(
    text: str | None, *, kinds_and_values: Sequence[tuple[str | None, object]] = (), scrub: bool = True
) -> str | None:
    """Free text about a personal row (a reject's message): each known value it repeats (as a whole word:
    a value inside a longer number is left to the patterns) replaced by its mask, then (`scrub`) whatever
    still looks like an identifier (9 digits or more), an e-mail or a day/month/year."""
    if text is None:
        return None
    for kind, value in kinds_and_values:
        if kind is None or value is None or isinstance(value, (bytes, bytearray, memoryview)):
            continue
        for form in sorted({str(value), str(value).strip()}, key=len, reverse=True):
            if len(form) >= 3 and "*" not in form and form in text:  # a starred form is masked already
                masked = str(mask_as(kind, form))
                text = re.sub(r"(?<!\w)" + re.escape(form) + r"(?!\w)", _literally(masked), text)
    if scrub:
        text = _LONG_NUMBER.sub(lambda m: _identifier(m.group()), text)
        text = _EMAIL.sub(lambda m: _email(m.group()), text)
        text = _DAY_MONTH_YEAR.sub(lambda m: _birth_date(m.group()), text)
    return text


def mask_example(example: Mapping[str, Any], *, table: str | None) -> dict[str, Any]:
    """An example row of a report (legacy key, field, value(s), message) with its personal data masked.

    Every key but the descriptive ones (legacy_key, field, reason_code, message, ...) is taken for a
    value of `field`: an original value, a value loaded, ... The message is masked when the row is
    personal (its key or its field is).
    """
    field = example.get("field")
    kind, key_is_personal = field_kind(field), key_kind(table)
    masked: dict[str, Any] = {}
    for name, value in example.items():
        if name == "legacy_key":
            masked[name] = mask_legacy_key(table, value)
        elif name in DESCRIPTIVE_KEYS:
            masked[name] = value
        else:
            masked[name] = mask_as(kind, value)
    if (kind or key_is_personal) and isinstance(example.get("message"), str):
        known = [(kind, v) for n, v in example.items() if n not in DESCRIPTIVE_KEYS]
        known.append((key_is_personal, example.get("legacy_key")))
        # A tax code is an enterprise's: only a value masked as an ID is replaced in the message.
        masked["message"] = mask_text(
            example["message"], kinds_and_values=known, scrub=bool(key_is_personal) or kind != TAX_CODE
        )
    return masked


# -- the policy of a site ------------------------------------------------------------------------

MASKED_NOTICE = (
    "Personal data in examples is masked: each example shows the legacy key, the field, the "
    "reason and the value masked by the rule of its kind (social insurance and ID numbers keep a "
    "few digits, names their initials, birth dates the year); for insured persons the legacy key "
    "is the social insurance number and is masked too. A custodian finds the row in the "
    "decrypted backup by its table, key and reason."
)
SHOWN_NOTICE = (
    "PERSONAL DATA SHOWN UNMASKED (the inventory sets show_personal_data: true): for the "
    "office's internal use only; do not hand this report to an auditor or anyone else."
)


@dataclass(frozen=True)
class Masking:
    """Whether reports of a site mask personal data (the default) or show it (inventory
    `show_personal_data: true`, for the office's internal use)."""

    show: bool = False

    @property
    def label(self) -> str:
        return "shown" if self.show else "masked"

    @property
    def notice(self) -> str:
        return SHOWN_NOTICE if self.show else MASKED_NOTICE

    def masks(self, field: str | None) -> bool:
        """Whether values of `field` may be masked."""
        return not self.show and field_kind(field) is not None

    def value(self, field: str | None, value: Any) -> Any:
        return value if self.show else mask_value(field, value)

    def legacy_key(self, table: str | None, key: Any) -> Any:
        return key if self.show else mask_legacy_key(table, key)

    def example(self, example: Mapping[str, Any], *, table: str | None) -> dict[str, Any]:
        return dict(example) if self.show else mask_example(example, table=table)


MASKED = Masking()


def masking_for(recorded: str | None) -> Masking:
    """The masking a run recorded (`"masked"` or `"shown"`); anything else (older runs) is masked."""
    return Masking(show=recorded == "shown")


def notice_for(recorded: str | None) -> str:
    return masking_for(recorded).notice
