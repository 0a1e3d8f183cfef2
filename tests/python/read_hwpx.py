"""Reads an HWPX file with python-hwpx, a reader written independently of Toron, and prints
what a test checks as JSON: the document's text, its tables cell by cell, the paragraphs 한글
shows in its outline (개요 styles), its pictures (what each refers to, its alternative text,
the image's size as its PNG header says), and what the package and schema validators find."""
import json
import struct
import sys
import warnings
import zipfile
import xml.etree.ElementTree as ET

from hwpx import HwpxDocument
from hwpx.tools.package_validator import validate_editor_open_safety
from hwpx.tools.validator import validate_document

warnings.simplefilter("ignore")
path = sys.argv[1]
doc = HwpxDocument.open(path)
tables = []
for t in doc.get_table_map()["tables"]:
    rows = [["" for _ in range(t["cols"])] for _ in range(t["rows"])]
    for c in t["cells"]:
        rows[c["row"]][c["col"]] = c["text"]
    tables.append(rows)

HP = "{http://www.hancom.co.kr/hwpml/2011/paragraph}"
HH = "{http://www.hancom.co.kr/hwpml/2011/head}"
HC = "{http://www.hancom.co.kr/hwpml/2011/core}"
OPF = "{http://www.idpf.org/2007/opf/}"


def png_size(data):
    """(width, height) from a PNG's IHDR, or None if it is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return list(struct.unpack(">II", data[16:24]))


with zipfile.ZipFile(path) as z:
    names = z.namelist()
    first = z.infolist()[0]
    header = ET.fromstring(z.read("Contents/header.xml"))
    # Every section, in order (the department tables have landscape pages of their own).
    section_names = sorted(
        (n for n in names if n.startswith("Contents/section") and n.endswith(".xml")),
        key=lambda n: int(n[len("Contents/section"):-len(".xml")]),
    )
    section_xml = [ET.fromstring(z.read(n)) for n in section_names]
    hpf = ET.fromstring(z.read("Contents/content.hpf"))
    manifest = {
        i.get("id"): i.get("href")
        for i in hpf.iter()
        if i.tag.endswith("item") and (i.get("media-type") or "").startswith("image/")
    }
    images = {href: png_size(z.read(href)) if href in names else None for href in manifest.values()}
pictures = [
    {
        "ref": next((i.get("binaryItemIDRef") for i in p.iter(HC + "img")), None),
        "comment": "".join(c.text or "" for c in p.iter(HP + "shapeComment")),
    }
    for section in section_xml
    for p in section.iter(HP + "pic")
]
outline_styles = {
    s.get("id") for s in header.iter(HH + "style") if s.get("name", "").startswith("개요")
}
fonts = sorted({f.get("face") for f in header.iter(HH + "font")})
outline = [
    "".join(t.text or "" for t in p.iter(HP + "t"))
    for section in section_xml
    for p in section.iter(HP + "p")
    if p.get("styleIDRef") in outline_styles
]
# Each section's page as python-hwpx reads it, and the first cells of its tables.
sections = []
for sec, xml in zip(doc.sections, section_xml):
    size = sec.properties.page_size
    sections.append({
        "orientation": size.orientation,
        "drawn_width": size.drawn_width,
        "drawn_height": size.drawn_height,
        "table_heads": [
            "".join(t.text or "" for t in tbl.iter(HP + "t"))[:40]
            for tbl in xml.iter(HP + "tbl")
        ],
        "table_widths": [
            int(next(tbl.iter(HP + "sz")).get("width")) for tbl in xml.iter(HP + "tbl")
        ],
    })
safety = validate_editor_open_safety(path)
schema = validate_document(path)
print(json.dumps({
    "text": doc.export_text(),
    "tables": tables,
    "outline": outline,
    "sections": sections,
    "fonts": fonts,
    "parts": names,
    "pictures": pictures,
    "manifest_images": manifest,
    "images": images,
    "first_part": first.filename,
    "first_stored": first.compress_type == zipfile.ZIP_STORED,
    "schema_issues": [str(i) for i in schema.issues],
    "package_errors": [
        i.message for i in safety.validate_package.issues if i.level == "error"
    ],
    "reopen_ok": safety.reopen_ok,
}, ensure_ascii=False))
