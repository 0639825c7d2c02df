"""Parsing every sample format, and every bad-input case, at the boundary."""

import io

import pytest

from tests.conftest import ROOT
from workbench.documents import parse_document, parse_uploads, safe_name
from workbench.errors import DataError

DOCS = ROOT / "sample_data" / "documents"


@pytest.mark.parametrize("path", sorted(DOCS.iterdir()), ids=lambda p: p.name)
def test_every_sample_document_parses_with_structure(path):
    doc = parse_document(path.name, path.read_bytes())
    assert doc.kind == path.suffix.lstrip(".") and doc.chars > 1000
    assert "Brindlemoss" in doc.text
    assert doc.text.lstrip().startswith("#"), "a heading was recognised at the start"
    assert len(doc.content_hash) == 64


def test_pdf_keeps_pages_and_headings():
    doc = parse_document("product-catalog.pdf", (DOCS / "product-catalog.pdf").read_bytes())
    assert doc.page_starts[0] == 0 and len(doc.page_starts) >= 2
    assert doc.page_at(doc.page_starts[-1] + 1) == len(doc.page_starts)
    assert "## SoilSense S2" in doc.text and "EUR 39.90" in doc.text


def test_html_drops_scripts_and_keeps_headings():
    html = b"<html><head><title>T</title><script>alert('x')</script></head><body><nav>menu</nav>" \
           b"<h1>Policy</h1><p>Ship in <b>3 days</b>.</p><ul><li>One</li></ul></body></html>"
    doc = parse_document("p.html", html)
    assert doc.text == "# Policy\n\nShip in 3 days .\n\n- One\n"


def _docx_bytes():
    import docx

    d = docx.Document()
    d.add_heading("Title here", 1)
    d.add_paragraph("Body text.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def test_docx_headings_become_markdown():
    assert parse_document("a.docx", _docx_bytes()).text == "# Title here\n\nBody text.\n"


def _encrypted_pdf():
    from pypdf import PdfWriter

    w = PdfWriter()
    w.add_blank_page(100, 100)
    w.encrypt("secret")
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


BAD = [
    ("corrupt.pdf", b"%PDF-1.4\n1 0 obj<<>>garbage", "corrupt or truncated"),
    ("fake.pdf", b"hello, not a pdf", "expected a PDF file"),
    ("binary.txt", b"\x00\x01\x02\x03binary\x00", "looks like a binary file"),
    ("latin1.txt", "caf\u00e9 ol\u00e9".encode("latin-1"), "expected text in UTF-8; line 1, column 4 holds byte 0xe9"),
    ("empty.md", b"", "the file is empty"),
    ("blank.md", b"   \n\n  ", "expected some text, found none"),
    ("../escape.txt", b"hello", "expected a plain file name"),
    ("a/b.txt", b"hello", "expected a plain file name"),
    (".hidden.md", b"hello", "expected a plain file name"),
    ("tool.exe", b"MZ", "expected one of"),
    ("broken.docx", b"PK\x03\x04 not really a zip", "expected a Word .docx file"),
]


@pytest.mark.parametrize("name,data,message", BAD, ids=[b[0] for b in BAD])
def test_bad_files_get_a_clear_message_naming_the_file(name, data, message):
    with pytest.raises(DataError) as err:
        parse_document(name, data)
    assert message in str(err.value)
    assert name in str(err.value)


def test_encrypted_pdf_is_refused():
    with pytest.raises(DataError, match="encrypted.pdf: the PDF is encrypted"):
        parse_document("encrypted.pdf", _encrypted_pdf())


def test_file_over_the_limit_is_refused():
    with pytest.raises(DataError, match=r"big.txt: the file is 2.0 MB; the upload limit is 1 MB"):
        parse_document("big.txt", b"a" * (2 * 2**20), max_bytes=2**20)


def test_one_bad_file_does_not_stop_the_others():
    good = (DOCS / "faq.md").read_bytes()
    docs, problems = parse_uploads([("faq.md", good), ("bad.pdf", b"nope"), ("copy.md", good), ("x.txt", b"ok text")])
    assert [d.name for d in docs] == ["faq.md", "x.txt"]
    assert [p.name for p in problems] == ["bad.pdf", "copy.md"]
    assert "same content as faq.md" in problems[1].message


def test_safe_name_accepts_plain_names():
    assert safe_name("Returns Policy (v2).md") == "Returns Policy (v2).md"
