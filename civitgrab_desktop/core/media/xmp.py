"""The XMP packet civitgrab writes into WebP files, and reading it back.

What goes where (what Lightroom, digiKam, darktable, exiftool and file-manager indexers read):
- dc:subject: the community tags (a bag of names); dc:description: the prompt (x-default);
  dc:creator: the CivitAI user; xmp:CreatorTool: civitgrab; xmp:CreateDate: the image's createdAt.
- Our namespace (prefix `civitgrab`, NS below) holds the whole record: ImageId, PageURL, MediaURL,
  Username, ModelName, ModelVersionName, Checkpoint, BaseModel, NSFWLevel, CreatedAt, Tags (a bag
  of TagId/Name/Score/Type/UpVotes/DownVotes/Automated/NeedsReview), Meta (the complete
  generation meta as JSON), ParametersSource (where UserComment's A1111 text came from: "file",
  the original's own text; "meta", built from Meta), Parameters (that whole text, when it cannot
  be built again from Meta: the source's own, or one EXIF holds cut), and the ComfyUI graph when it
  did not fit into EXIF.

Text is XML-escaped; NUL characters are removed (as in EXIF) and the other characters XML 1.0
cannot hold (control characters other than tab and line breaks, lone surrogates) become U+FFFD. Multi-line values are elements, never attributes (an XML
parser turns line breaks in attributes into spaces).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

NS = "https://civitgrab.invalid/ns/xmp/1.0/"
FORMAT_VERSION = 2
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
DC = "http://purl.org/dc/elements/1.1/"
XMP = "http://ns.adobe.com/xap/1.0/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_XMP_BYTES = 64 * 1024 * 1024  # reading: refuse absurd packets rather than parse them

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
TAG_KEYS = (("id", "TagId"), ("name", "Name"), ("score", "Score"), ("type", "Type"), ("upVotes", "UpVotes"),
            ("downVotes", "DownVotes"), ("automated", "Automated"), ("needsReview", "NeedsReview"))
SIMPLE_FIELDS = (("id", "ImageId"), ("pageUrl", "PageURL"), ("url", "MediaURL"), ("username", "Username"),
                 ("modelName", "ModelName"), ("modelVersionName", "ModelVersionName"), ("checkpoint", "Checkpoint"),
                 ("baseModel", "BaseModel"), ("nsfwLevel", "NSFWLevel"), ("createdAt", "CreatedAt"))


def xml_text(value: Any) -> str:
    """`value` as text XML can carry, escaped for element content."""
    return escape(_NOT_XML.sub("\ufffd", str(value).replace("\x00", "")))


def xml_attr(value: Any) -> str:
    """`value` as a quoted XML attribute (line breaks and tabs as character references, so a
    parser gives them back instead of turning them into spaces)."""
    text = xml_text(value).replace('"', "&quot;")
    return '"' + text.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;") + '"'


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _element(name: str, value: Any, indent: str = "   ") -> str:
    return f"{indent}<civitgrab:{name}>{xml_text(_scalar(value))}</civitgrab:{name}>\n"


def build_xmp(info: dict[str, Any], tags: list[dict[str, Any]], *, parameters: str | None = None,
              parameters_source: str | None = None, comfy: dict[str, str] | None = None,
              creator_tool: str = "civitgrab") -> bytes:
    """The XMP packet (UTF-8 bytes) for a WebP: see the module doc. `comfy`: ComfyUI texts that
    EXIF could not hold (normally empty)."""
    meta = info.get("meta") if isinstance(info.get("meta"), dict) else {}
    prompt = meta.get("prompt") if isinstance(meta.get("prompt"), str) else None
    out = [
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n',
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n',
        f' <rdf:RDF xmlns:rdf="{RDF}">\n',
        f'  <rdf:Description rdf:about="" xmlns:dc="{DC}" xmlns:xmp="{XMP}" xmlns:civitgrab="{NS}">\n',
        f"   <xmp:CreatorTool>{xml_text(creator_tool)}</xmp:CreatorTool>\n",
    ]
    created = info.get("createdAt")
    if isinstance(created, str) and created:
        out.append(f"   <xmp:CreateDate>{xml_text(created)}</xmp:CreateDate>\n")
    names = [str(t["name"]) for t in tags if isinstance(t, dict) and t.get("name")]
    if names:
        out.append("   <dc:subject>\n    <rdf:Bag>\n")
        out.extend(f"     <rdf:li>{xml_text(n)}</rdf:li>\n" for n in names)
        out.append("    </rdf:Bag>\n   </dc:subject>\n")
    if prompt:
        out.append(f'   <dc:description>\n    <rdf:Alt>\n     <rdf:li xml:lang="x-default">{xml_text(prompt)}'
                   "</rdf:li>\n    </rdf:Alt>\n   </dc:description>\n")
    if info.get("username"):
        out.append(f"   <dc:creator>\n    <rdf:Seq>\n     <rdf:li>{xml_text(info['username'])}</rdf:li>\n"
                   "    </rdf:Seq>\n   </dc:creator>\n")
    out.append(_element("FormatVersion", FORMAT_VERSION))
    for key, name in SIMPLE_FIELDS:
        value = info.get(key)
        if value not in (None, "", {}):
            out.append(_element(name, value))
    if tags:
        # one line per tag: its fields as attributes of a resource (RDF's short form)
        out.append("   <civitgrab:Tags>\n    <rdf:Bag>\n")
        for tag in tags:
            if not isinstance(tag, dict) or not tag.get("name"):
                continue
            fields = " ".join(f"civitgrab:{name}={xml_attr(_scalar(tag[key]))}" for key, name in TAG_KEYS
                              if tag.get(key) is not None)
            out.append(f"     <rdf:li><rdf:Description {fields}/></rdf:li>\n")
        out.append("    </rdf:Bag>\n   </civitgrab:Tags>\n")
    if meta:
        out.append(_element("Meta", json.dumps(meta, ensure_ascii=False, default=str)))
    if parameters:
        out.append(_element("Parameters", parameters))
    if parameters_source:
        out.append(_element("ParametersSource", parameters_source))
    for key, text in (comfy or {}).items():
        out.append(_element("Comfy" + key[:1].upper() + key[1:], text))
    out.append("  </rdf:Description>\n </rdf:RDF>\n</x:xmpmeta>\n")
    out.append('<?xpacket end="w"?>')
    # surrogatepass would only matter for input xml_text already replaced; replace is a safety net
    return "".join(out).encode("utf-8", "replace")


def _lang_alt(desc: ET.Element, tag: str) -> str | None:
    node = desc.find(f"{tag}/{{{RDF}}}Alt")
    if node is None:
        return None
    items = list(node.findall(f"{{{RDF}}}li"))
    chosen = next((li for li in items if li.get(XML_LANG) == "x-default"), items[0] if items else None)
    return chosen.text if chosen is not None else None


def _list(desc: ET.Element, tag: str, kind: str) -> list[str]:
    node = desc.find(f"{tag}/{{{RDF}}}{kind}")
    return [li.text or "" for li in node.findall(f"{{{RDF}}}li")] if node is not None else []


def read_xmp(packet: bytes | None) -> dict[str, Any]:
    """What an XMP packet says, in build_xmp's terms: subject (list), description, creator,
    creator_tool, and `record` (our namespace's fields; {} when the packet is not ours).
    Unreadable or hostile packets (DOCTYPE/entities, absurd size) read as empty."""
    result: dict[str, Any] = {"subject": [], "description": None, "creator": None, "creator_tool": None,
                              "record": {}}
    if not packet or len(packet) > MAX_XMP_BYTES or b"<!DOCTYPE" in packet or b"<!ENTITY" in packet:
        return result
    try:
        root = ET.fromstring(packet.strip(b"\x00 \r\n\t"))
    except ET.ParseError:
        return result
    for desc in root.iter(f"{{{RDF}}}Description"):
        result["subject"] = result["subject"] or _list(desc, f"{{{DC}}}subject", "Bag")
        result["description"] = result["description"] or _lang_alt(desc, f"{{{DC}}}description")
        creators = _list(desc, f"{{{DC}}}creator", "Seq")
        result["creator"] = result["creator"] or (creators[0] if creators else None)
        tool = desc.find(f"{{{XMP}}}CreatorTool")
        if tool is None:
            tool_text = desc.get(f"{{{XMP}}}CreatorTool")
        else:
            tool_text = tool.text
        result["creator_tool"] = result["creator_tool"] or tool_text
        record = result["record"]
        for child in desc:
            if not child.tag.startswith(f"{{{NS}}}"):
                continue
            name = child.tag[len(NS) + 2:]
            if name == "Tags":
                record["tags"] = _read_tags(child)
            else:
                record[name] = child.text or ""
    return result


def _read_tags(node: ET.Element) -> list[dict[str, Any]]:
    """The tag resources: fields as attributes of an rdf:Description (as written) or as child
    elements (rdf:parseType="Resource", as other tools may rewrite them)."""
    names = {name: key for key, name in TAG_KEYS}
    prefix = f"{{{NS}}}"
    tags = []
    for li in node.iter(f"{{{RDF}}}li"):
        tag: dict[str, Any] = {}
        for holder in (li, *li.findall(f"{{{RDF}}}Description")):
            for attr, value in holder.attrib.items():
                if attr.startswith(prefix) and attr[len(prefix):] in names:
                    tag[names[attr[len(prefix):]]] = value
            for child in holder:
                if child.tag.startswith(prefix) and child.tag[len(prefix):] in names:
                    tag[names[child.tag[len(prefix):]]] = child.text or ""
        if tag.get("name"):
            tags.append(tag)
    return tags
