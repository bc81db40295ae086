"""TrueType fonts for PDFs, parsed once per process instead of once per document.

fpdf2's ``add_font`` parses the whole font file (character map, a width and glyph id per
character: ~20 ms for Roboto) and its ``output`` hands the parsed ``TTFont`` to fontTools'
subsetter, which decompiles every table of the whole font (3,359 glyphs for Roboto, 49,531
for the CJK fallback) to keep the ~80 glyphs a one-page invoice uses, changing the font in
place (another ~25 ms a font). Both were paid again by every document.

Here each font file is read once per process into a ``FontMaster``: fpdf2's own parsed
font object (the template) plus the raw parts of the font (glyph outlines, metrics,
character maps, the small tables). A document then gets

- when it adds the font, a clone of the template that shares what fpdf2 only reads (the
  character map, glyph ids, the parsed ``TTFont`` shaped text looks glyph names up in) and
  owns what fpdf2 changes per document (the subset map, the width table it fills in, the
  font descriptor, the sizes used, the missing glyphs);
- just before ``output``, in place of the whole font, a small ``TTFont`` built from the raw
  parts with only the glyphs the document used (plus the components of composite glyphs
  and the first four glyphs fontTools keeps): fpdf2's own subsetter then runs as before
  but over a few dozen glyphs. The glyph outlines are taken as they are in the font file
  (no re-encoding; ``recalcBBoxes`` off), so the embedded subset has the same glyphs,
  outlines and character map as with fpdf2's own path and the pages the same pixels
  (tests/invoices/test_pdf_fonts.py); only the font-wide bounding box and maxima in
  ``head``/``hhea``/``maxp`` stay the whole font's (valid, and what the PDF's font
  descriptor says anyway) instead of being recomputed from every outline.

Masters are never changed once built and are shared by the threads that render PDFs
(documents render in ``asyncio.to_thread``); a font is loaded by the first document that
uses it (the CJK fallback: ~44 MiB, only if some name needs it). ``linearize`` output is
refused: its producer would skip the swap and subset the shared font.
"""

from __future__ import annotations

import copy
import struct
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # fpdf2 and fontTools load with the first PDF, not at start
    from fontTools.ttLib import TTFont
    from fpdf import FPDF
    from fpdf.fonts import TTFFont

# Tables carried over whole (small); glyf/loca, hmtx/vmtx and cmap are rebuilt per
# document; the layout tables (GSUB, GPOS, GDEF) and FFTM are dropped by fpdf2 anyway.
_WHOLE_TABLES = ("head", "hhea", "maxp", "OS/2", "name", "post", "cvt ", "fpgm", "prep", "gasp")
_VERTICAL = ("vhea", "vmtx")
_KEPT_BY_SUBSETTER = 4  # fontTools' recommended_glyphs: the first four glyph ids


@dataclass(frozen=True, slots=True)
class Subtable:
    """A Unicode character map subtable of the font (format 4 or 12), read only."""

    platform: int
    encoding: int
    format: int
    language: int
    cmap: Mapping[int, str]


@dataclass(frozen=True, slots=True)
class FontMaster:
    """One font file, parsed once: fpdf2's template object and, read from its parsed
    ``TTFont`` without copies, the parts a document's small font is built from."""

    template: TTFFont
    order: Sequence[str]
    gid: Mapping[str, int]
    glyphs: Mapping[str, Any]  # fontTools ``Glyph`` objects, raw (never expanded here)
    hmetrics: Mapping[str, tuple[int, int]]
    vmetrics: Mapping[str, tuple[int, int]] | None
    subtables: tuple[Subtable, ...]
    codes: Mapping[str, tuple[int, ...]]  # glyph name -> the code points drawn with it
    tables: Mapping[str, bytes]


_masters: dict[tuple[Path, int], FontMaster] = {}
_lock = threading.Lock()


def master(path: Path, *, font_number: int = 0) -> FontMaster:
    """The parsed font at ``path`` (a collection: its ``font_number``th face)."""
    key = (path, font_number)
    found = _masters.get(key)
    if found is None:
        with _lock:
            found = _masters.get(key)
            if found is None:
                found = _masters[key] = _load(path, font_number)
    return found


def _load(path: Path, font_number: int) -> FontMaster:
    from fpdf import FPDF
    from fpdf.fonts import TTFFont

    template = TTFFont(FPDF(), path, "", "", collection_font_number=font_number)
    ttfont = template.ttfont
    vertical = all(tag in ttfont for tag in _VERTICAL)
    subtables = tuple(
        Subtable(table.platformID, table.platEncID, table.format, table.language, table.cmap)
        for table in ttfont["cmap"].tables
        if table.format in (4, 12) and table.isUnicode()
    )
    codes: dict[str, list[int]] = {}
    for code, name in {k: v for t in subtables for k, v in t.cmap.items()}.items():
        codes.setdefault(name, []).append(code)
    return FontMaster(
        template=template,
        order=ttfont.getGlyphOrder(),
        gid=ttfont.getReverseGlyphMap(),
        glyphs=ttfont["glyf"].glyphs,  # lazy font: each glyph holds its raw bytes
        hmetrics=ttfont["hmtx"].metrics,
        vmetrics=ttfont["vmtx"].metrics if vertical else None,
        subtables=subtables,
        codes={name: tuple(points) for name, points in codes.items()},
        tables=_tables(ttfont, vertical=vertical),
    )


def _outline(found: FontMaster, name: str) -> bytes:
    """The glyph's bytes as in the font file."""
    glyph = found.glyphs[name]
    data = getattr(glyph, "data", None)
    if data is not None:
        return bytes(data)
    if glyph.numberOfContours == 0:
        return b""
    return bytes(glyph.compile(found.template.ttfont["glyf"]))  # expanded by someone


def _tables(ttfont: TTFont, *, vertical: bool) -> dict[str, bytes]:
    tags = [tag for tag in _WHOLE_TABLES if tag in ttfont]
    if vertical:
        tags.append("vhea")
    raw = {tag: bytes(ttfont.reader[tag]) for tag in tags}
    post = copy.copy(ttfont["post"])
    post.formatType = 3.0  # no glyph names: the subsetter writes 3.0 anyway
    raw["post"] = bytes(post.compile(ttfont))
    return raw


def add_font(pdf: FPDF, family: str, style: str, path: Path, *, font_number: int = 0) -> None:
    """``pdf.add_font(family, style, path)`` from the process's parsed copy of the font."""
    fontkey = f"{family.lower()}{style}"
    if fontkey not in pdf.fonts:
        pdf.fonts[fontkey] = _clone(master(path, font_number=font_number), pdf, fontkey, style)


def _clone(found: FontMaster, pdf: FPDF, fontkey: str, style: str) -> TTFFont:
    from fpdf.enums import TextEmphasis
    from fpdf.fonts import SubsetMap, TTFFont

    template = found.template
    font = TTFFont.__new__(TTFFont)
    for slot in TTFFont.__slots__:
        if hasattr(template, slot):
            setattr(font, slot, getattr(template, slot))
    font.i = len(pdf.fonts) + 1
    font.fontkey = fontkey
    font.emphasis = TextEmphasis.coerce(style)
    font.cw = copy.copy(template.cw)  # a defaultdict: reading an unknown character adds it
    font.desc = copy.copy(template.desc)  # output() names it and points it at the stream
    font.missing_glyphs = []
    font.biggest_size_pt = 0
    font._hbfont = None  # the shaper's font keeps a size: one per document
    font.subset = SubsetMap(font)
    return font


def before_output(pdf: FPDF) -> None:
    """Give each cloned font the small font fpdf2 subsets and embeds in place of the
    shared one (which the subsetter would change). ``pdf_class()`` calls it."""
    from fpdf.fonts import TTFFont

    shared = {id(found.template.ttfont): found for found in list(_masters.values())}
    for font in pdf.fonts.values():
        found = shared.get(id(font.ttfont)) if isinstance(font, TTFFont) else None
        if isinstance(font, TTFFont) and found is not None:
            font.ttfont = used_glyphs_font(found, font.subset.get_all_glyph_names())


@cache
def pdf_class() -> type[FPDF]:
    """``FPDF`` that embeds the shared fonts' used glyphs (see the module). The swap is
    made by the output producer, after ``output`` has drawn the last footer and the page
    count (they add glyphs too)."""
    from fpdf import FPDF
    from fpdf.output import OutputProducer

    class Producer(OutputProducer):
        def bufferize(self) -> bytearray:
            before_output(self.fpdf)
            return super().bufferize()

    class SharedFontsPdf(FPDF):
        def output(self, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("linearize"):
                raise ValueError("linearized output would subset the shared fonts")
            kwargs["output_producer_class"] = Producer
            return super().output(*args, **kwargs)

    return SharedFontsPdf


@cache
def _table_class(tag: str) -> Any:
    from fontTools.ttLib import getTableClass

    return getTableClass(tag)


def _new(tag: str) -> Any:
    """``fontTools.ttLib.newTable`` without its per-call module lookup."""
    return _table_class(tag)(tag)


def used_glyphs_font(found: FontMaster, names: Iterable[str]) -> TTFont:
    """A ``TTFont`` with only ``names`` (+ components, + the first four glyphs)."""
    from fontTools.ttLib import TTFont

    keep = _closure(found, {*names, *found.order[:_KEPT_BY_SUBSETTER]})
    order = sorted(keep, key=found.gid.__getitem__)
    font = TTFont(recalcBBoxes=False, recalcTimestamp=False)
    font.setGlyphOrder(order)
    for tag, raw in found.tables.items():
        table = _new(tag)
        table.decompile(raw, font)
        font[tag] = table
    font["glyf"] = _glyf(found, order)
    font["loca"] = _new("loca")
    font["hmtx"] = _metrics("hmtx", found.hmetrics, order)
    if found.vmetrics is not None:
        font["vmtx"] = _metrics("vmtx", found.vmetrics, order)
    font["cmap"] = _cmap(found, order)
    return font


def _glyf(found: FontMaster, order: list[str]) -> Any:
    """The outlines of ``order``; composite glyphs point at their parts' new ids."""
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    new_gid = {found.gid[name]: index for index, name in enumerate(order)}
    glyf = _new("glyf")
    glyf.glyphOrder = order
    glyf.axisTags = []
    glyf.glyphs = {}
    for name in order:
        data = _outline(found, name)
        glyph = Glyph(data)
        if _is_composite(data):
            glyph.remapComponentsFast(new_gid)  # fontTools.subset's, as its subsetter does
        glyf.glyphs[name] = glyph
    return glyf


def _metrics(tag: str, metrics: Mapping[str, tuple[int, int]], order: list[str]) -> Any:
    table = _new(tag)
    table.metrics = {name: metrics[name] for name in order}
    return table


def _cmap(found: FontMaster, order: list[str]) -> Any:
    """The master's Unicode subtables, restricted to the kept glyphs."""
    from fontTools.ttLib.tables._c_m_a_p import CmapSubtable

    cmap = _new("cmap")
    cmap.tableVersion = 0
    cmap.tables = []
    for source in found.subtables:
        subtable = CmapSubtable.newSubtable(source.format)
        subtable.platformID, subtable.platEncID = source.platform, source.encoding
        subtable.language = source.language
        subtable.cmap = {
            code: name
            for name in order
            for code in found.codes.get(name, ())
            if source.cmap.get(code) == name
        }
        cmap.tables.append(subtable)
    return cmap


def _is_composite(data: bytes) -> bool:
    return len(data) >= 2 and struct.unpack(">h", data[:2])[0] < 0


class _Names:
    """What ``Glyph.getComponentNames`` asks of a glyf table."""

    extended = False

    def __init__(self, order: Sequence[str]) -> None:
        self.order = order

    def getGlyphName(self, gid: int) -> str:  # noqa: N802 - fontTools' name
        return self.order[gid]


def _closure(found: FontMaster, names: set[str]) -> set[str]:
    """``names`` and every glyph their composite glyphs are made of."""
    from fontTools.ttLib.tables._g_l_y_f import Glyph

    table = _Names(found.order)
    todo = [name for name in names if _is_composite(_outline(found, name))]
    while todo:
        name = todo.pop()
        for part in Glyph(_outline(found, name)).getComponentNames(table):
            if part not in names:
                names.add(part)
                if _is_composite(_outline(found, part)):
                    todo.append(part)
    return names
