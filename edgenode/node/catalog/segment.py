"""Words for search: jieba segmentation with a trimmed dictionary, pinyin per word, synonyms.

Search matches whole words, so titles and queries must be cut the same way.
jieba's full dictionary (349,000 words) costs ~0.75 s and ~70 MB in every
process that loads it, and a web worker needs it for its first query.  The
words below frequency ``MIN_FREQ`` are rare literary and proper names that
titles of this library hardly use; without them the dictionary is ~60,000
words, loads in ~0.1 s and takes ~18 MB (docs/portal.md, "Search").  The
project's own vocabulary (``search_words.txt``) and every synonym are added on
top, so 小蝌蚪 or 动画片 stay whole words even though the trim dropped them.
The trimmed dictionary is built in memory: nothing is cached in /tmp, which
the units make private and read-only anyway.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

MIN_FREQ = 37
HERE = Path(__file__).resolve().parent
WORDS_FILE = HERE / "search_words.txt"
SYNONYMS_FILE = HERE / "synonyms.txt"

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[0-9a-z]+")
_IS_CJK = re.compile(rf"[{_CJK}]")
_lock = threading.Lock()
_tokenizer = None


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def is_cjk(word: str) -> bool:
    return bool(_IS_CJK.match(word))


def _data_lines(path: Path) -> list[str]:
    """Non-blank lines of a data file, without ``#`` comments."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            lines.append(normalize(line))
    return lines


@lru_cache(maxsize=1)
def synonym_groups() -> dict[str, tuple[str, ...]]:
    """Each word of ``synonyms.txt`` mapped to its whole group (one group a line, words by spaces)."""
    groups: dict[str, tuple[str, ...]] = {}
    for line in _data_lines(SYNONYMS_FILE):
        words = tuple(dict.fromkeys(line.split()))
        for w in words:
            groups[w] = tuple(dict.fromkeys(groups.get(w, ()) + words))
    return groups


def synonyms(word: str) -> tuple[str, ...]:
    return synonym_groups().get(word, (word,))


def _trimmed_dictionary() -> bytes:
    import jieba
    lines = []
    with open(Path(jieba.__file__).parent / "dict.txt", "rb") as f:
        for line in f:
            parts = line.split(b" ", 2)
            if len(parts) >= 2 and int(parts[1]) >= MIN_FREQ:
                lines.append(parts[0] + b" " + parts[1])
    return b"\n".join(lines)


def tokenizer():
    """The process's jieba tokenizer, built on first use (thread-safe)."""
    global _tokenizer
    if _tokenizer is not None:
        return _tokenizer
    with _lock:
        if _tokenizer is None:
            import jieba
            jieba.setLogLevel(logging.WARNING)
            tk = jieba.Tokenizer()
            tk.FREQ, tk.total = tk.gen_pfdict(io.BytesIO(_trimmed_dictionary()))
            tk.initialized = True
            extra = _data_lines(WORDS_FILE) + [w for line in _data_lines(SYNONYMS_FILE) for w in line.split()]
            for word in extra:
                tk.add_word(word.split()[0], freq=max(tk.FREQ.get(word, 0), 20000))
            _tokenizer = tk
    return _tokenizer


def words(text: str) -> list[str]:
    """The words of ``text`` in order: CJK runs cut by jieba (accurate mode), latin/digit runs as they are."""
    out: list[str] = []
    for run in _RUN.findall(normalize(text)):
        if is_cjk(run):
            out.extend(w for w in tokenizer().cut(run, HMM=True) if w.strip())
        else:
            out.append(run)
    return out


def sub_words(word: str) -> list[str]:
    """The shorter dictionary words inside a long word (病虫害 → 病虫, 虫害), as jieba's search mode finds them."""
    if len(word) < 3 or not is_cjk(word):
        return []
    freq = tokenizer().FREQ
    return [word[i:i + n] for n in (2, 3) if n < len(word)
            for i in range(len(word) - n + 1) if freq.get(word[i:i + n])]


def pinyin_of(word: str) -> tuple[str, str]:
    """(full pinyin, initials) of one word; latin words are their own pinyin and have no initials."""
    if not is_cjk(word):
        return word, ""
    # Imported here: pypinyin's dictionaries cost ~55 MB per process, and only
    # indexing needs them, never the web workers that merely search.
    from pypinyin import Style, lazy_pinyin
    syllables = [p for p in lazy_pinyin(word, style=Style.NORMAL, errors="ignore") if p]
    return "".join(syllables), "".join(p[0] for p in syllables)
