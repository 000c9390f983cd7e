"""The message catalogue: every message id is translated and the compiled .mo is current."""

import io
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
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


def test_compiled_catalogue_is_current():
    buf = io.BytesIO()
    write_mo(buf, catalog())
    assert (PO.with_suffix(".mo")).read_bytes() == buf.getvalue(), "run: pybabel compile -d edgenode/node/web/translations"


def test_english_is_one_cookie_away(client):
    client.set_cookie("lang", "en")
    html = client.get("/").get_data(as_text=True)
    assert "New arrivals" in html and "<html lang=\"en\">" in html
    client.set_cookie("lang", "xx")
    assert "最新上架" in client.get("/").get_data(as_text=True)
