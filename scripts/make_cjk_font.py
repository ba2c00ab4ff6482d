"""Build the package's Chinese report font: Noto Sans CJK SC cut to GB 2312 and what the package itself says.

The reports (the matplotlib maps, and the glyphs embedded in the HTML pages)
need a CJK font on every machine, including ones with none installed. The
whole Noto Sans CJK SC is 16 MB (and came with a 103 MB font package); the
characters Chinese planning documents use fit in a few MB:

- every character of GB 2312 (6,763 hanzi, the full-width forms, kana,
  Greek, Cyrillic, the symbols row), found by decoding each two-byte code;
- ASCII, Latin-1, general punctuation, letter-like symbols (℃, №), number
  forms and enclosed numbers (①), arrows, CJK symbols and punctuation,
  half- and full-width forms;
- every character the package's own files say (the report words, the GB/T
  4754 industry names, the templates, the web page) and the sample data's
  text attributes, so nothing the tool itself writes falls outside it.

The font is licensed under the SIL Open Font License 1.1, which allows
subsetting and redistribution; the modified font is renamed (family
"Noto Sans CJK SC GB2312", so it is never mistaken for an installed full
Noto Sans CJK SC) and ships with the licence text (OFL.txt beside it).

Source: NotoSansCJKsc-Regular.otf, version 1.004 (sha256 printed below),
from the ``mplfonts`` 0.0.11 wheel (``mplfonts/fonts/``), from
https://github.com/notofonts/noto-cjk (``Sans/OTF/SimplifiedChinese/``), or
``fonts-noto-cjk`` (a .ttc: give ``--ttc-index`` for the SC member).

Usage::

    python scripts/make_cjk_font.py path/to/NotoSansCJKsc-Regular.otf
    python scripts/make_cjk_font.py /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc --ttc-index 2

It writes ``src/threelines/report/fonts/NotoSansCJKsc-GB2312.otf``.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from fontTools import subset
from fontTools.ttLib import TTFont

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src/threelines/report/fonts/NotoSansCJKsc-GB2312.otf"
FAMILY = "Noto Sans CJK SC GB2312"

#: Code point ranges kept whole besides GB 2312 (inclusive).
RANGES = [
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00FF),  # Latin-1: °, ², ×, ·
    (0x2010, 0x205E),  # general punctuation: dashes, quotes, ‰, ※
    (0x2100, 0x214F),  # letter-like symbols: ℃, №, ℉
    (0x2150, 0x218F),  # number forms: Ⅰ Ⅱ Ⅲ, fractions
    (0x2190, 0x21FF),  # arrows
    (0x2460, 0x24FF),  # enclosed numbers: ① ⑴ ⒈
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0xFF00, 0xFFEF),  # half- and full-width forms
]
#: Text files of the package whose characters are kept.
TEXT_SUFFIXES = {".py", ".csv", ".yaml", ".yml", ".j2", ".html", ".css", ".js", ".json", ".md", ".txt"}


def gb2312() -> set[str]:
    """Every character GB 2312 encodes (rows 0xA1-0xF7, cells 0xA1-0xFE)."""
    found = set()
    for row in range(0xA1, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                found.add(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                continue  # an unassigned code
    return found


def package_text() -> set[str]:
    """The characters of the package's text files and of the sample layers' string attributes."""
    found = set()
    for folder in (ROOT / "src/threelines", ROOT / "data/sample"):
        for path in folder.rglob("*"):
            if path.suffix in TEXT_SUFFIXES and path.is_file():
                found |= set(path.read_text(encoding="utf-8", errors="ignore"))
    import pyogrio

    for path in sorted((ROOT / "data/sample").rglob("*.gpkg")):
        for layer, _ in pyogrio.list_layers(path):
            frame = pyogrio.read_dataframe(path, layer=layer, read_geometry=False)
            for column in frame.select_dtypes(exclude="number").columns:
                found |= set("".join(str(v) for v in frame[column].dropna()))
    return found


def characters() -> str:
    """The characters to keep, sorted: GB 2312, the ranges and the package's own text (no control codes)."""
    keep = gb2312() | package_text()
    for start, end in RANGES:
        keep |= {chr(c) for c in range(start, end + 1)}
    return "".join(sorted(c for c in keep if c.isprintable() or c == "\u3000"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", type=Path, help="NotoSansCJKsc-Regular.otf, or a Noto Sans CJK .ttc")
    parser.add_argument("--ttc-index", type=int, default=0, help="The SC member of a .ttc collection.")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    digest = hashlib.sha256(args.source.read_bytes()).hexdigest()
    text = characters()
    options = subset.Options()
    options.layout_features = ["*"]  # vertical forms, proportional and full-width alternates
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True  # a character outside the subset shows as a box, not nothing
    options.glyph_names = False
    font = TTFont(args.source, fontNumber=args.ttc_index)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    _rename(font)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    font.save(args.out)
    kept = len(font.getBestCmap())
    print(f"{args.source} (sha256 {digest})")
    print(f"wrote {args.out}: {kept} characters, {len(font.getGlyphOrder())} glyphs, {args.out.stat().st_size:,} bytes")


def _rename(font: TTFont) -> None:
    """Give the subset its own family name: it is a modified version, and an installed full font keeps its name."""
    postscript = FAMILY.replace(" ", "") + "-Regular"
    names = {1: FAMILY, 3: f"{postscript};subset of NotoSansCJKsc-Regular 1.004", 4: f"{FAMILY} Regular",
             6: postscript, 16: FAMILY}  # fmt: skip
    table = font["name"]
    for record in list(table.names):
        if record.nameID in names or record.nameID == 17:
            table.removeNames(nameID=record.nameID)
    for name_id, value in names.items():
        table.setName(value, name_id, 3, 1, 0x409)
        table.setName(value, name_id, 1, 0, 0)
    if "CFF " in font:
        cff = font["CFF "].cff
        cff.fontNames = [postscript]
        top = cff.topDictIndex[0]
        top.FamilyName, top.FullName = FAMILY, f"{FAMILY} Regular"


if __name__ == "__main__":
    main()
