"""Parse uploaded files (txt, md, pdf, docx, html) into ``Document``s, validating at the boundary.

Every format is normalised to Markdown-like text (headings as ``#`` lines, paragraphs separated by a
blank line) so one structure-aware splitter serves all of them. Parsing uses well-kept libraries:
pypdf, python-docx and BeautifulSoup. Problems raise ``DataError`` naming the file and what was wrong;
``parse_uploads`` collects them so one bad file never stops the others.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Iterable

from .errors import DataError

SUPPORTED = {".txt": "txt", ".md": "md", ".markdown": "md", ".pdf": "pdf", ".docx": "docx",
             ".html": "html", ".htm": "html"}
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_HTML_DROP = ["script", "style", "noscript", "nav", "template", "svg", "form", "button"]
_HTML_BLOCKS = ["h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "blockquote", "dt", "dd", "tr", "caption"]


@dataclass(frozen=True)
class Document:
    """One parsed document."""

    name: str
    """Display name: the uploaded file's name (never used as a path)."""
    kind: str
    """``txt``, ``md``, ``pdf``, ``docx`` or ``html``."""
    text: str
    """Normalised Markdown-like text."""
    size_bytes: int
    """Size of the uploaded file."""
    content_hash: str = ""
    """sha256 of ``text``: identifies the content across names and uploads."""
    page_starts: tuple[int, ...] = field(default_factory=tuple)
    """For PDFs: the character offset in ``text`` where each page starts."""

    def __post_init__(self) -> None:
        if not self.content_hash:
            object.__setattr__(self, "content_hash", hashlib.sha256(self.text.encode()).hexdigest())

    @property
    def chars(self) -> int:
        return len(self.text)

    def page_at(self, offset: int) -> int | None:
        """1-based page number of ``offset`` (PDFs only)."""
        if not self.page_starts:
            return None
        page = 1
        for i, start in enumerate(self.page_starts):
            if offset >= start:
                page = i + 1
        return page

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class UploadProblem:
    """A file that could not be used, and why."""

    name: str
    """The file's name as uploaded."""
    message: str
    """What was expected and what was found."""


def safe_name(name: str) -> str:
    """Return ``name`` if it is a plain file name, else raise ``DataError``.

    Names with folders (``../x.txt``, ``a\\b.md``) are refused rather than cleaned, so that the user
    sees exactly which file was rejected.
    """
    if not isinstance(name, str) or not name.strip():
        raise DataError("Expected a file name, got an empty one.")
    if len(name) > 200:
        raise DataError(f"{name!r}: expected a file name of at most 200 characters, got {len(name)}.")
    plain = PurePosixPath(name).name == name and PureWindowsPath(name).name == name
    if not plain or name in {".", ".."} or name.startswith(".") or "\x00" in name:
        raise DataError(f"{name!r}: expected a plain file name without folders or a leading dot; got a path-like name.")
    return name


def kind_of(name: str) -> str:
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED:
        raise DataError(
            f"{name}: expected one of {', '.join(sorted(set(SUPPORTED)))}; got {suffix or 'no extension'!r}."
        )
    return SUPPORTED[suffix]


def parse_document(name: str, data: bytes, max_bytes: int | None = None) -> Document:
    """Parse one uploaded file; raise ``DataError`` naming the file on any problem.

    ``max_bytes`` defaults to the ``WORKBENCH_MAX_UPLOAD_MB`` limit."""
    from . import limits

    name = safe_name(name)
    kind = kind_of(name)
    if max_bytes is None:
        max_bytes = limits.value("WORKBENCH_MAX_UPLOAD_MB") * 2**20
        if len(data) > max_bytes:
            raise limits.exceeded("WORKBENCH_MAX_UPLOAD_MB", round(len(data) / 2**20, 1), name)
    if len(data) > max_bytes:
        raise DataError(f"{name}: the file is {len(data) / 2**20:.1f} MB; the upload limit is "
                        f"{max_bytes / 2**20:.0f} MB.")
    if not data:
        raise DataError(f"{name}: the file is empty (0 bytes).")
    parse = {"txt": _parse_text, "md": _parse_text, "html": _parse_html, "pdf": _parse_pdf, "docx": _parse_docx}[kind]
    try:
        text, pages = parse(name, data)
    except DataError:
        raise
    except RecursionError:
        raise DataError(f"{name}: expected a {kind} file; its structure is nested too deeply to read.") from None
    except Exception as exc:  # a damaged file of the right kind: the parser's own error, named
        if "amplification" in str(exc) or "entity" in str(exc).lower() and "xml" in type(exc).__name__.lower():
            raise DataError(f"{name}: expected a readable {kind} file; its XML expands far beyond its size (entities "
                            "that repeat themselves, as in a 'billion laughs' file), so it was not read.") from None
        raise DataError(f"{name}: expected a readable {kind} file; it could not be read "
                        f"({type(exc).__name__}: {str(exc)[:200]}).") from None
    text = _tidy(text)
    if not text.strip():
        hint = " (a scanned PDF needs text recognition first)" if kind == "pdf" else ""
        raise DataError(f"{name}: expected some text, found none{hint}.")
    return Document(name=name, kind=kind, text=text, size_bytes=len(data), page_starts=tuple(pages))


def parse_uploads(files: Iterable[tuple[str, bytes]], max_bytes: int | None = None
                  ) -> tuple[list[Document], list[UploadProblem]]:
    """Parse many files; good ones are returned, bad ones reported, none stops the others."""
    docs: list[Document] = []
    problems: list[UploadProblem] = []
    seen: dict[str, str] = {}
    for name, data in files:
        try:
            doc = parse_document(name, data, max_bytes)
        except DataError as exc:
            problems.append(UploadProblem(name, str(exc)))
            continue
        if doc.content_hash in seen:
            problems.append(UploadProblem(name, f"{name}: same content as {seen[doc.content_hash]} in this upload; skipped."))
            continue
        if any(d.name == doc.name for d in docs):
            problems.append(UploadProblem(name, f"{name}: two files with this name in one upload; the second was skipped."))
            continue
        seen[doc.content_hash] = doc.name
        docs.append(doc)
    return docs, problems


# -- formats ------------------------------------------------------------------------------------

def _decode_text(name: str, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DataError(f"{name}: expected text, but the file contains NUL bytes: it looks like a binary file.")
    from .textdata import utf8_text

    text = utf8_text(name, data, "text")
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\n\r\t\f")
    if controls > 0.05 * min(len(text), 8192):
        raise DataError(f"{name}: expected text, but {controls} control characters were found: it looks binary.")
    return text


def _parse_text(name: str, data: bytes) -> tuple[str, list[int]]:
    text = _decode_text(name, data)
    if name.lower().endswith((".md", ".markdown")):
        return text, []
    return _plain_text_headings(text), []


def _plain_text_headings(text: str) -> str:
    """Mark headings in plain text as Markdown: underlined lines and short ALL-CAPS lines."""
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if line.strip() and nxt and set(nxt) <= {"="} and len(nxt) >= 3:
            out.append("# " + line.strip())
            i += 2
            continue
        if line.strip() and nxt and set(nxt) <= {"-"} and len(nxt) >= 3:
            out.append("## " + line.strip())
            i += 2
            continue
        stripped = line.strip()
        prev_blank = i == 0 or not lines[i - 1].strip()
        if (stripped and prev_blank and len(stripped) <= 80 and stripped.upper() == stripped
                and any(c.isalpha() for c in stripped) and not stripped.endswith((".", ",", ";"))):
            out.append("## " + stripped.title() if len(out) else "# " + stripped.title())
            i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _parse_html(name: str, data: bytes) -> tuple[str, list[int]]:
    from bs4 import BeautifulSoup

    if b"\x00" in data[:8192]:
        raise DataError(f"{name}: expected an HTML page, but the file contains NUL bytes: it looks binary.")
    soup = BeautifulSoup(data, "html.parser")
    for tag in soup(_HTML_DROP):
        tag.decompose()
    root = soup.body or soup
    parts: list[str] = []
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    if title and not root.find("h1"):
        parts.append(f"# {title}")
    for el in root.find_all(_HTML_BLOCKS):
        if el.find(_HTML_BLOCKS):  # a container of other blocks: its children are emitted instead
            continue
        if el.name == "tr":
            text = " | ".join(c.get_text(" ", strip=True) for c in el.find_all(["td", "th"]))
        else:
            text = el.get_text(" ", strip=True)
        if not text:
            continue
        if el.name[0] == "h" and el.name[1:].isdigit():
            parts.append("#" * int(el.name[1:]) + " " + text)
        elif el.name == "li":
            parts.append("- " + text)
        else:
            parts.append(text)
    if not parts:  # a page with no block tags: fall back to all visible text
        parts.append(root.get_text("\n", strip=True))
    return "\n\n".join(parts), []


def _parse_pdf(name: str, data: bytes) -> tuple[str, list[int]]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.startswith(b"%PDF"):
        raise DataError(f"{name}: expected a PDF file (starting with %PDF), got something else.")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise DataError(f"{name}: the PDF is encrypted; remove its password and upload it again.")
        pages = [_pdf_page_lines(page) for page in reader.pages]
    except DataError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as exc:
        raise DataError(f"{name}: expected a readable PDF; it is corrupt or truncated ({exc}).") from None
    # Lines set in a larger font than the body text are headings (the largest size: level 1).
    weights: dict[float, int] = {}
    for lines in pages:
        for size, line in lines:
            weights[size] = weights.get(size, 0) + len(line)
    body = max(weights, key=weights.__getitem__) if weights else 0.0
    largest = max(weights) if weights else 0.0
    text, starts = "", []
    for lines in pages:
        starts.append(len(text))
        out: list[str] = []
        for size, line in lines:
            if body and size >= body * 1.15 and len(line) <= 120:
                out.append(("\n# " if size == largest else "\n## ") + line + "\n")
            else:
                out.append(line)
        text += "\n".join(out).strip() + "\n\n"
    return text, starts


def _pdf_page_lines(page: Any) -> list[tuple[float, str]]:
    """(font size, text) for each line of a page; sizes from pypdf's text visitor."""
    pieces: list[tuple[float, str]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            scale = abs(tm[0]) if tm and tm[0] else 1.0
            pieces.append((round(float(size) * scale, 1), text.strip()))

    plain = page.extract_text(visitor_text=visit) or ""
    if not pieces and plain.strip():
        return [(0.0, line) for line in plain.splitlines() if line.strip()]
    return [(size, line) for size, chunk in pieces for line in chunk.splitlines() if line.strip()]


#: A .docx is a zip: one that unpacks to more than this many times its size (and more than
#: ``DOCX_MIN_UNPACKED``) is refused before parsing, so a small file cannot cost minutes of CPU.
DOCX_MAX_RATIO = 40
DOCX_MIN_UNPACKED = 8 * 2**20


def _parse_docx(name: str, data: bytes) -> tuple[str, list[int]]:
    import zipfile

    import docx
    from docx.table import Table

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise DataError(f"{name}: expected a Word .docx file; it could not be opened ({exc}).") from None
    limit = max(len(data) * DOCX_MAX_RATIO, DOCX_MIN_UNPACKED)
    if unpacked > limit:
        raise DataError(f"{name}: expected a Word file that unpacks to at most {limit / 2**20:.0f} MB "
                        f"({DOCX_MAX_RATIO}x its size); it unpacks to {unpacked / 2**20:.0f} MB.")
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DataError(f"{name}: expected a Word .docx file; it could not be opened ({exc}).") from None
    parts: list[str] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                parts.append(" | ".join(cell.text.strip() for cell in row.cells))
            continue
        text = block.text.strip()
        if not text:
            continue
        style = (block.style.name if block.style is not None else "") or ""
        level = re.match(r"Heading (\d)", style)
        if style == "Title":
            parts.append("# " + text)
        elif level:
            parts.append("#" * min(6, int(level.group(1))) + " " + text)
        elif "List" in style:
            parts.append("- " + text)
        else:
            parts.append(text)
    return "\n\n".join(parts), []


def _tidy(text: str) -> str:
    # Unpaired surrogates (some PDFs' text layers hold them) cannot be stored or embedded: replace them.
    text = re.sub("[\ud800-\udfff]", "\ufffd", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"
