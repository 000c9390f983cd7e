"""Chinese search: FTS5 trigram for long queries, a gram index for short ones.

SQLite's trigram tokenizer finds nothing for queries under 3 characters, yet
most Chinese words have 2 (水稻, 故事).  So each resource is indexed twice:

* ``search_tri`` (trigram): title, tags, description and the pinyin of the
  title/tags as one string of full syllables and one of initials, so
  ``shuidao`` or ``sdzz`` match as substrings;
* ``search_gram`` (unicode61): the same text pre-split into CJK unigrams and
  bigrams, pinyin syllables and pairs of initials, so 水, 水稻 and ``sd`` are
  single-token lookups.

Each query term goes to the table that can answer it; terms are ANDed.
Ranking is FTS5's bm25 with title weighted above tags, pinyin and description.
"""

from __future__ import annotations

import re
import sqlite3
import unicodedata
from dataclasses import dataclass, field

from pypinyin import Style, lazy_pinyin

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[0-9A-Za-z]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
_SPLIT = re.compile(r"[\s,，、;；。.!！?？\"'“”‘’()（）《》<>\[\]{}:：*^+\-|/\\]+")

# bm25 weights per column: title, tags, description, pinyin.
WEIGHTS = (10.0, 5.0, 1.0, 6.0)


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def grams(text: str) -> str:
    """Space-separated tokens: CJK unigrams+bigrams, other words as they are."""
    out: list[str] = []
    for run in _RUN.findall(normalize(text)):
        if _IS_CJK.match(run):
            out.extend(run)
            out.extend(run[i:i + 2] for i in range(len(run) - 1))
        else:
            out.append(run)
    return " ".join(out)


def pinyin_forms(text: str) -> tuple[str, str, list[str]]:
    """(full pinyin string, initials string, syllables) of the CJK in ``text``."""
    syllables, initials, full = [], [], []
    for run in _RUN.findall(normalize(text)):
        if not _IS_CJK.match(run):
            continue
        py = lazy_pinyin(run, style=Style.NORMAL, errors="ignore")
        syllables.extend(py)
        full.append("".join(py))
        initials.append("".join(p[0] for p in py if p))
    return " ".join(full), " ".join(initials), syllables


def index_row(title: str, tags: list[str], description: str) -> tuple[tuple, tuple]:
    """The two rows (trigram, gram) that index one resource."""
    head = title + " " + " ".join(tags)
    full, inits, syllables = pinyin_forms(head)
    tri = (normalize(title), normalize(" ".join(tags)), normalize(description), f"{full} {inits}")
    init_pairs = [w[i:i + 2] for w in inits.split() for i in range(len(w) - 1)]
    gram = (grams(title), grams(" ".join(tags)), grams(description), " ".join(syllables + init_pairs))
    return tri, gram


def index_resource(conn: sqlite3.Connection, num: int, title: str, tags: list[str], description: str) -> None:
    tri, gram = index_row(title, tags, description)
    unindex_resource(conn, num)
    conn.execute("INSERT INTO search_tri (rowid, title, tags, description, pinyin) VALUES (?, ?, ?, ?, ?)",
                 (num, *tri))
    conn.execute("INSERT INTO search_gram (rowid, title, tags, description, pinyin) VALUES (?, ?, ?, ?, ?)",
                 (num, *gram))


def unindex_resource(conn: sqlite3.Connection, num: int) -> None:
    conn.execute("DELETE FROM search_tri WHERE rowid = ?", (num,))
    conn.execute("DELETE FROM search_gram WHERE rowid = ?", (num,))


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def plan(query: str) -> dict[str, list[str]]:
    """Split a query into terms and route each to the table that can find it."""
    routes: dict[str, list[str]] = {"search_tri": [], "search_gram": []}
    for term in _SPLIT.split(normalize(query)):
        if not term:
            continue
        if len(term) >= 3:
            routes["search_tri"].append(term)
        else:
            # Mixed short terms ("a水") are split into the runs the gram index holds.
            for run in _RUN.findall(term):
                routes["search_gram"].append(run)
    return routes


@dataclass
class SearchResult:
    total: int
    items: list[dict] = field(default_factory=list)
    page: int = 1
    page_size: int = 20

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def search(conn: sqlite3.Connection, query: str, *, column: str | None = None, kind: str | None = None,
           tag: str | None = None, page: int = 1, page_size: int = 20, include_hidden: bool = False) -> SearchResult:
    routes = plan(query)
    if not any(routes.values()):
        return SearchResult(0, [], page, page_size)
    joins, params, scores = [], [], []
    for table, terms in routes.items():
        if not terms:
            continue
        alias = "t" if table == "search_tri" else "g"
        w = ", ".join(str(x) for x in WEIGHTS)
        joins.append(f"JOIN (SELECT rowid AS num, bm25({table}, {w}) AS score FROM {table} "
                     f"WHERE {table} MATCH ?) {alias} ON {alias}.num = r.num")
        params.append(" AND ".join(_quote(t) for t in terms))
        scores.append(f"{alias}.score")
    where, wparams = _filters(column, kind, tag, include_hidden)
    sql_from = f"FROM resources r {' '.join(joins)} WHERE {where}"
    total = conn.execute(f"SELECT count(*) {sql_from}", (*params, *wparams)).fetchone()[0]
    page = max(1, page)
    rows = conn.execute(
        f"SELECT r.*, {' + '.join(scores)} AS score {sql_from} ORDER BY score, r.added_at DESC LIMIT ? OFFSET ?",
        (*params, *wparams, page_size, (page - 1) * page_size)).fetchall()
    return SearchResult(total, [dict(r) for r in rows], page, page_size)


def _filters(column, kind, tag, include_hidden) -> tuple[str, list]:
    clauses, params = [], []
    if not include_hidden:
        clauses.append("r.visible = 1")
    if column:
        clauses.append("r.column_key = ?")
        params.append(column)
    if kind:
        clauses.append("r.kind = ?")
        params.append(kind)
    if tag:
        clauses.append("EXISTS (SELECT 1 FROM resource_tags rt WHERE rt.resource_num = r.num AND rt.tag = ?)")
        params.append(tag)
    return (" AND ".join(clauses) or "1"), params
