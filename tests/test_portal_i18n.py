"""The message catalogue: every message id is translated, and the build compiles the .mo from the .po."""

import shutil
import sys
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

import edgenode.node.web

WEB = Path(edgenode.node.web.__file__).parent
NODE = WEB.parent  # every area's templates and views
PO = WEB / "translations" / "zh_Hans_CN" / "LC_MESSAGES" / "messages.po"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def catalog():
    with PO.open("rb") as f:
        return read_po(f)


def test_every_message_id_has_a_chinese_translation():
    cat = catalog()
    used = {msg for _f, _l, msg, *_ in extract_from_dir(str(NODE), METHODS, keywords={"_": None, "_l": None,
                                                                                      "gettext": None})}
    missing = sorted(m for m in used if isinstance(m, str) and (m not in cat or not cat[m].string))
    assert missing == [], "run pybabel extract/update (docs/portal.md) and translate: " + repr(missing)


def _messages(cat) -> dict:
    return {m.id: m.string for m in cat if m.id and m.string and not m.fuzzy}


def test_the_installed_catalogue_says_what_the_po_says():
    """The .mo the app reads (compiled by setup.py at install time) holds every translation of the .po."""
    with PO.with_suffix(".mo").open("rb") as f:
        assert _messages(read_mo(f)) == _messages(catalog()), "reinstall: pip install -e . (setup.py compiles it)"


def test_building_compiles_the_catalogue_from_the_po(tmp_path):
    """setup.py's build step writes the .mo from the .po: a stale or missing .mo in the tree is replaced."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    try:
        from setup import compile_catalogues
    finally:
        sys.path.pop(0)
    tree = tmp_path / "edgenode" / "node" / "web" / "translations"
    shutil.copytree(PO.parent.parent.parent, tree)
    mo = tree / "zh_Hans_CN" / "LC_MESSAGES" / "messages.mo"
    mo.write_bytes(b"stale")
    assert compile_catalogues(tmp_path) == [mo]
    with mo.open("rb") as f:
        assert _messages(read_mo(f)) == _messages(catalog())
    assert len(_messages(catalog())) > 50


def test_english_is_one_cookie_away(client):
    client.set_cookie("lang", "en")
    html = client.get("/").get_data(as_text=True)
    assert "New arrivals" in html and "<html lang=\"en\">" in html
    client.set_cookie("lang", "xx")
    assert "最新上架" in client.get("/").get_data(as_text=True)
