"""Uploaded bytes to text, with one wording for every kind of upload (documents, training pairs, test sets).

    text = decode_upload("pairs.jsonl", data, "training pairs (JSONL or CSV)")

Refuses (``DataError``) an empty file, a binary one (NUL bytes) and bytes that are not UTF-8, saying
where: the line and column of the first bad byte, as an editor shows them.
"""

from __future__ import annotations

import codecs

from .errors import DataError


def decode_upload(name: str, data: bytes, expected: str) -> str:
    """``data`` as text (UTF-8, a leading byte-order mark dropped); ``expected`` says what the file should hold."""
    if not data or not data.strip():
        raise DataError(f"{name}: expected {expected}, found an empty file.")
    if b"\x00" in data[:8192]:
        raise DataError(f"{name}: expected {expected} as text, but the file contains NUL bytes: it looks binary.")
    return utf8_text(name, data, expected)


def utf8_text(name: str, data: bytes, expected: str) -> str:
    """``data`` decoded as UTF-8 (a leading byte-order mark dropped), or the line and column that is not."""
    body = data[len(codecs.BOM_UTF8):] if data.startswith(codecs.BOM_UTF8) else data
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        column = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{name}: expected {expected} in UTF-8; line {line}, column {column} holds byte "
                        f"0x{body[exc.start]:02x}, which is not UTF-8 (a file saved as Latin-1 or Windows-1252?). "
                        "Save it as UTF-8 and upload it again.") from None
