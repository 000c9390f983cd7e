"""The portal's sections in plain words: their defaults and their grammar (``portal.sections``).

Used by core/config.py to check the setting at start-up and by the portal (node/portal/sections.py).
"""

from __future__ import annotations


def _str_list(v):
    return None if all(isinstance(x, str) and x for x in v) else "must be a list of non-empty strings"


SECTION_ICONS = ("children", "opera", "health", "farming", "services", "learning", "music", "story", "cartoon")

# The home page's sections in plain words (docs/portal.md, "Sections"): each gathers the resources of
# some of the project's columns and of some tags.  ``subs`` are tags shown as picture tiles inside.
DEFAULT_SECTIONS = [
    {"key": "shaoer", "name": "少儿", "icon": "children", "columns": [], "children": True,
     "tags": ["少儿", "动画", "卡通", "故事", "儿歌", "童谣"], "subs": ["动画", "故事", "儿歌"]},
    {"key": "xiqu", "name": "戏曲", "icon": "opera", "columns": [],
     "tags": ["戏曲", "黄梅戏", "京剧", "豫剧", "越剧", "评剧", "曲艺"]},
    {"key": "jiankang", "name": "健康", "icon": "health", "columns": [], "tags": ["健康", "养生", "健身"]},
    {"key": "nongye", "name": "农业技术", "icon": "farming", "columns": ["sannong"],
     "tags": ["农技", "种植", "养殖", "果树"]},
    {"key": "shenghuo", "name": "生活服务", "icon": "services", "columns": ["shequ"],
     "tags": ["办事指南", "安全", "法律", "务工"]},
    {"key": "xuexi", "name": "学习", "icon": "learning", "columns": [], "tags": ["学习", "阅读", "技能", "科普"]},
]


def check_sections(v) -> str | None:
    """Why ``portal.sections`` is invalid, or None."""
    keys = set()
    for i, s in enumerate(v):
        where = f"section {i + 1}"
        if not isinstance(s, dict):
            return f"{where}: must be a table with key, name, icon, columns, tags"
        unknown = set(s) - {"key", "name", "icon", "columns", "tags", "subs", "children"}
        if unknown:
            return f"{where}: unknown field(s) {', '.join(sorted(unknown))}"
        key = s.get("key")
        if not isinstance(key, str) or not key.isascii() or not key.replace("-", "").isalnum() or key in keys:
            return f"{where}: key must be a unique word of ASCII letters, digits and '-'"
        keys.add(key)
        if not isinstance(s.get("name"), str) or not s["name"].strip():
            return f"{where}: name must be non-empty text"
        if s.get("icon", "learning") not in SECTION_ICONS:
            return f"{where}: icon must be one of {', '.join(SECTION_ICONS)}"
        for field in ("columns", "tags", "subs"):
            if not isinstance(s.get(field, []), list) or _str_list(s.get(field, [])):
                return f"{where}: {field} must be a list of non-empty strings"
        if not s.get("columns") and not s.get("tags"):
            return f"{where}: needs at least one column or tag"
        if not isinstance(s.get("children", False), bool):
            return f"{where}: children must be true or false"
    return None
