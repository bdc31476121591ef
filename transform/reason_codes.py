"""Every reason a legacy row is rejected or loaded with a data-quality flag.

One table, so that the transform, the load's reject log, the validation
report and docs/reason-codes.md all speak the same codes. The action says
what happens to the row:

- ``reject``: the row is not loaded; it appears in the rejects with this code
  (only the first blocking reason; the message lists the others).
- ``flag``: the row is loaded; the code is added to its ``dq_flags``, and the
  value concerned (field, legacy original, value loaded) is kept in the
  target's ``mig_flags``. Any normalization that changes a value is a flag.

The rule of thumb behind each choice: reject when the new system cannot hold
the row truthfully (no key, no required value, a reference it needs, content
that fails its checksum, a birth date that cannot exist); flag when the row is
still true and useful and only an optional value had to be repaired, cleared
or qualified (the original stays in the encrypted backup, tied to the loaded
row by its legacy_row_hash).

Example::

    >>> REASON_CODES["ORPHAN_UNIT"][0]
    'reject'
"""

from __future__ import annotations

REJECT = "reject"
FLAG = "flag"

REASON_CODES: dict[str, tuple[str, str]] = {
    # --- keys and identity -------------------------------------------------
    "KEY_MISSING": (REJECT, "The legacy primary key is empty or blank."),
    "DUPLICATE_KEY": (
        REJECT,
        "Another accepted row has the same key after normalization "
        "(trimmed, upper-cased), e.g. unit codes `ab123 ` and `AB123`; the first "
        "row in key order is loaded.",
    ),
    "DUPLICATE_DOSSIER_NO": (
        REJECT,
        "Another accepted dossier has the same dossier number (SO_HO_SO) after normalization.",
    ),
    "REQUIRED_MISSING": (
        REJECT,
        "A value the new system requires is empty (the reject's field says "
        "which): office/unit/person name, dossier number, procedure, submission "
        "time, file name, history time, last-change time.",
    ),
    "OFFICE_CODE_INVALID": (REJECT, "Office code is not 2 digits (province) or 4 digits (district)."),
    "OFFICE_LEVEL_INVALID": (
        REJECT,
        "Office level CAP is not 1 (province) or 2 (district), or disagrees with the length of the office code.",
    ),
    "UNIT_CODE_INVALID": (REJECT, "Unit code is not 1-15 letters/digits after trimming and upper-casing."),
    "SI_NUMBER_INVALID": (REJECT, "Social insurance number (the person's key) is not exactly 10 digits."),
    # --- values the new system requires --------------------------------------
    "TRANSACTION_MODE_INVALID": (REJECT, "PHUONG_THUC_GD is not 1 (portal), 2 (network, unsigned) or 3 (I-VAN)."),
    "UNIT_STATUS_INVALID": (REJECT, "Unit TRANG_THAI is not 1 (active) or 0 (stopped)."),
    "STATUS_INVALID": (REJECT, "Dossier or history status is not one of 0-6."),
    "BIRTH_DATE_INVALID": (
        REJECT,
        "Birth date cannot exist (e.g. 31/02/1990, month 13), is in none of "
        "the accepted forms (dd/mm/yyyy, mm/yyyy, yyyy and their variants, see "
        "README) or mixes separators (`12/05-1990`), is before 1900 or after the "
        "reference date; the message names the form. Benefits depend on it: a "
        "person must fix it at the source.",
    ),
    "BIRTH_DATE_TWO_DIGIT_YEAR": (
        REJECT,
        "Birth date written with a two-digit year (`05/07/85`, form "
        "dd/mm/yy; `07/85`, `85`): the century of a birth year is never "
        "certain, so it is not guessed.",
    ),
    # --- references --------------------------------------------------------
    "ORPHAN_UNIT": (REJECT, "The dossier's unit (MA_DV) is not an accepted unit; the new system requires it."),
    "ORPHAN_DOSSIER": (REJECT, "The file's or history entry's dossier (ID_HO_SO) is not an accepted dossier."),
    # --- attachments -------------------------------------------------------
    "ATTACHMENT_MISSING": (
        REJECT,
        "No content: NOI_DUNG is empty and DUONG_DAN is empty, the file is "
        "not on disk, or no attachment folder was given.",
    ),
    "ATTACHMENT_PATH_INVALID": (REJECT, "DUONG_DAN is absolute or escapes the site's attachment folder."),
    "ATTACHMENT_MD5_MISMATCH": (
        REJECT,
        "The content's MD5 differs from the legacy MD5 column: the "
        "content is corrupt or not the file the dossier referred to.",
    ),
    # --- flags: text ---------------------------------------------------------
    "TEXT_REPAIRED_TCVN3": (
        FLAG,
        "A text value was TCVN3 (ABC) bytes read as Windows-1252 "
        "(`Hµ Néi`; in capitals `H€ N—I` with TCVN 5712's own capital codes, or "
        "`Hµ NéI` typed in a capital font) and was converted to Unicode NFC "
        "(`Hà Nội`, `HÀ NỘI`).",
    ),
    "TEXT_REPAIRED_VNI": (
        FLAG,
        "A text value was VNI-Windows bytes read as Windows-1252 (`Haø Noäi`) and was converted to Unicode NFC.",
    ),
    "TEXT_REPAIRED_NFD": (FLAG, 'A text value was decomposed Unicode (NFD, "tổ hợp") and was composed to NFC.'),
    "TEXT_ENCODING_AMBIGUOUS": (
        FLAG,
        "A text value is not valid Vietnamese as it stands, and its TCVN3 and "
        "VNI decodings are equally valid (`Cöa`: `Cửa` or `Cưa`); loaded "
        "unchanged for a person to decide rather than guessed.",
    ),
    "TEXT_ENCODING_SUSPECT": (
        FLAG,
        "A text value looks like legacy bytes but no decoding makes all of it "
        "Vietnamese: it holds control characters that only TCVN 5712 capital codes "
        "produce (`B\\x81O`), or a TCVN3/VNI decoding makes some of its words "
        "Vietnamese and not the others (`Hµ NÉI`, TCVN3 upper-cased by software); "
        "loaded unchanged for a person to check, never guessed.",
    ),
    "WHITESPACE_TRIMMED": (
        FLAG,
        "A value had whitespace around it, or runs of spaces or tabs inside free "
        "text, and was trimmed (runs made one space); the original is kept with "
        "the flag.",
    ),
    "CODE_NORMALIZED": (
        FLAG,
        "A code had stray whitespace or the wrong case and was normalized: unit "
        "and office codes (also where a row refers to them) trimmed and upper-cased "
        "(`ab123 ` -> `AB123`), procedure codes trimmed and lower-cased (`600A` -> "
        "`600a`, the spec's form), dossier numbers and form codes trimmed.",
    ),
    "EMPTY_AS_NULL": (FLAG, "An empty or blank string stood for a missing value and was loaded as NULL."),
    # --- flags: dates --------------------------------------------------------
    "BIRTH_DATE_PARTIAL": (
        FLAG,
        "Birth date known only as mm/yyyy or yyyy: loaded as the first day of "
        "that month/year with birth_date_precision month|year.",
    ),
    "DATE_FORM_VARIANT": (
        FLAG,
        "A legacy text date was written in an accepted form other than the spec's "
        "(dd-mm-yyyy, dd.mm.yyyy, yyyy-mm-dd; mm-yyyy, mm.yyyy, yyyy-mm; or, for a "
        "period or registration date, a two-digit year, which stands for the one year "
        "from 1995 to the reference date it fits) and was parsed; the original is kept "
        "with the flag.",
    ),
    "REGISTRATION_DATE_INVALID": (
        FLAG,
        "Unit registration date NGAY_DANG_KY is not a possible full date "
        "(dd/mm/yyyy or a variant, a two-digit year only where it fits one "
        "year from 1995 on); loaded as NULL (rejecting the unit would orphan "
        "its persons and dossiers).",
    ),
    "DECLARATION_PERIOD_INVALID": (
        FLAG,
        "Dossier period KY_KE_KHAI is not a possible month (mm/yyyy or a "
        "variant, a two-digit year only where it fits one year from 1995 "
        "on); loaded as NULL.",
    ),
    "RECEIVED_AFTER_CUTOVER": (
        FLAG,
        "The dossier was received (NGAY_TIEP_NHAN) after the site's cut-over "
        "date, which the rules forbid; loaded so that nothing is lost, and "
        "reported.",
    ),
    "DATES_OUT_OF_ORDER": (
        FLAG,
        "Dossier dates contradict each other (received before submitted, or result returned before received).",
    ),
    # --- flags: identifiers and codes ---------------------------------------
    "TAX_CODE_MALFORMED": (FLAG, "Tax code is not 10 digits or 10 digits `-` 3 digits; loaded as NULL."),
    "TAX_CODE_NORMALIZED": (
        FLAG,
        "A valid tax code was written with spaces inside or without the dash "
        "before a branch's three digits, and was normalized (`0100233488 001` -> "
        "`0100233488-001`).",
    ),
    "TAX_CODE_CHECK_DIGIT": (
        FLAG,
        "Tax code check digit is wrong (weights 31,29,23,19,17,13,7,5,3; check = 10 - sum mod 11); loaded as NULL.",
    ),
    "CITIZEN_ID_INVALID": (FLAG, "Citizen ID is not 9 or 12 digits; loaded as NULL."),
    "CITIZEN_ID_NORMALIZED": (FLAG, "A valid citizen ID was written with spaces inside, which were removed."),
    "SEX_INVALID": (FLAG, "GIOI_TINH is not 1 (male) or 0 (female); loaded as NULL."),
    "IVAN_CODE_MISSING": (FLAG, "The unit transacts through an I-VAN provider (mode 3) but has no provider code."),
    "IVAN_CODE_INVALID": (FLAG, "I-VAN provider code is not 5 digits; loaded as NULL."),
    "ORPHAN_UNIT_CLEARED": (
        FLAG,
        "The person's employer (MA_DV) is not an accepted unit; the person "
        "is loaded with no unit (insurance rights do not depend on it).",
    ),
    "ORPHAN_OFFICE_CLEARED": (
        FLAG,
        "The unit's or dossier's office (MA_CQ) is not an accepted office; loaded with no office.",
    ),
    "POSSIBLE_DUPLICATE_PERSON": (
        FLAG,
        "Another accepted person has the same citizen ID, or the same "
        "name, full birth date and unit, under a different social "
        "insurance number; both are loaded for a person to resolve.",
    ),
    "ATTACHMENT_SIZE_MISMATCH": (
        FLAG,
        "KICH_THUOC differs from the content's real size (the MD5 matched); size_bytes holds the real size.",
    ),
    "ATTACHMENT_MD5_MISSING": (
        FLAG,
        "The legacy MD5 is empty, so the content could not be checked; md5/sha256 are computed from the content.",
    ),
    "FILE_TYPE_UNKNOWN": (FLAG, "LOAI_TEP is neither `xml` nor `pdf`."),
}


def is_reject(code: str) -> bool:
    return REASON_CODES[code][0] == REJECT


def reason_codes_markdown() -> str:
    """docs/reason-codes.md, generated from REASON_CODES (a test keeps the file in sync)."""
    lines = [
        "# Reason codes",
        "",
        "Generated from `transform/reason_codes.py` (`REASON_CODES`); do not edit by hand:",
        "`python -m transform > docs/reason-codes.md`.",
        "",
        "`reject`: the row is not loaded and is listed in the rejects with this code (the first",
        "blocking reason; the message lists the others). `flag`: the row is loaded and the code is",
        "added to its `dq_flags`; the value concerned is kept in the target's `mig_flags` (legacy",
        "key, field, original value, value loaded), and the validation report lists flagged rows by",
        "table and code with examples. Any normalization that changes a value is a flag. Rows the",
        "load itself refuses after the transform accepted them (conflicts with the new system, for",
        "example) have their own codes in `load/reasons.py`.",
        "",
        "| code | action | meaning |",
        "|---|---|---|",
    ]
    for code, (action, description) in REASON_CODES.items():
        escaped = description.replace("|", r"\|")
        lines.append(f"| `{code}` | {action} | {escaped} |")
    return "\n".join(lines + [""] + _date_forms_markdown()) + "\n"


def _date_forms_markdown() -> list[str]:
    from .dates import AGENCY_FOUNDED, FORMS, SPEC_FORMS  # the parser's own list

    lines = [
        "## Accepted legacy date forms",
        "",
        "Text dates (birth date NGAY_SINH, unit registration NGAY_DANG_KY, declaration period",
        "KY_KE_KHAI; DATETIME columns come typed and are not parsed). Day and month need not be",
        "padded; one separator (`/`, `-` or `.`) throughout; day before month. A form other than",
        "the spec's is parsed and flagged `DATE_FORM_VARIANT`.",
        "",
        "| precision | the spec's form | variants |",
        "|---|---|---|",
    ]
    for precision, forms in FORMS.items():
        spec = [f for f in forms if f in SPEC_FORMS]
        variants = [f"`{f}`" for f in forms if f not in SPEC_FORMS]
        lines.append(f"| {precision} | `{spec[0]}` | {', '.join(variants) or '—'} |")
    lines += [
        "",
        "Two-digit years: a birth year is never certain (`05/07/85` is rejected `BIRTH_DATE_TWO_DIGIT_YEAR`).",
        f"A period or registration year (`07/24`) stands for the one year from {AGENCY_FOUNDED} (Vietnam",
        "Social Security's founding) to the reference date that ends in those digits; if none or",
        "several do, the value is refused. Refused too: mixed separators (`12/05-1990`), month-first",
        "dates (`12/25/1990`: month 25), other orders (`1990/05/12`). A refused birth date rejects",
        "the row (`BIRTH_DATE_INVALID`, the message naming the form); a refused period or",
        "registration date is loaded as NULL with its flag.",
    ]
    return lines
