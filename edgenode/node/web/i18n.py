"""Message catalogues (Flask-Babel).

Templates and views write English message ids (``{{ _('Search') }}``); the
Chinese text villagers see lives in ``translations/zh_Hans_CN/LC_MESSAGES/messages.po``.
Another language is one more catalogue (see docs/portal.md).  The portal is
Chinese unless a ``lang`` cookie names another catalogue we ship: reading-room
PCs often have English browsers, so ``Accept-Language`` is deliberately ignored.
"""

from __future__ import annotations

from pathlib import Path

from flask import g, request
from flask_babel import Babel, get_translations

TRANSLATIONS = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "zh_Hans_CN"  # what Babel calls zh-CN


def available() -> list[str]:
    return sorted([DEFAULT_LOCALE, "en"] + [p.name for p in TRANSLATIONS.iterdir()
                                            if (p / "LC_MESSAGES" / "messages.mo").exists()
                                            and p.name != DEFAULT_LOCALE]) if TRANSLATIONS.exists() else [DEFAULT_LOCALE]


def init_app(app) -> None:
    langs = set(available())

    def select_locale():
        lang = request.cookies.get("lang")
        return lang if lang in langs else DEFAULT_LOCALE

    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=select_locale)
    # A page calls _() a dozen times or more; Flask-Babel looks the catalogue up through its
    # context each time, which cost ~15% of an uncached search page.  Once per request is enough.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: _catalogue().ugettext(s),
        ngettext=lambda s, p, n: _catalogue().ungettext(s, p, n),
        newstyle=True,
        pgettext=lambda c, s: _catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: _catalogue().unpgettext(c, s, p, n),
    )


def _catalogue():
    t = g.get("_catalogue")
    if t is None:
        t = g._catalogue = get_translations()
    return t
