"""Speech files: espeak-ng's Mandarin voice, encoded by ffmpeg to small Ogg Vorbis files.

A file is named by the SHA-256 of what it says (voice, rate and text), so a
changed title gets a new file, identical texts share one, and the web needs
no table to find it: ``DATA_DIR/speech/ab/<sha>.ogg``.  Two texts per
resource: the title (listing pages) and the title with its description (the
resource page).  Files appear by atomic rename, so a crash leaves at most a
``.tmp`` file, which the next run overwrites.

espeak-ng starts in ~10 ms; ffmpeg in ~80 ms, so one ffmpeg encodes a whole
batch of WAV files (one input and one output each).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from edgenode.core.errors import EdgenodeError

VOICE = "cmn"
RATE = 140          # words per minute; espeak-ng's default 175 is quick for elderly listeners
BATCH = 40
STAMP = ".made"
MAX_CHARS = 400     # a description is read up to here; longer ones end with the first sentences
_SPACE = re.compile(r"\s+")


def title_text(title: str) -> str:
    return _SPACE.sub(" ", title or "").strip()


def full_text(title: str, description: str) -> str:
    text = title_text(title)
    desc = _SPACE.sub(" ", description or "").strip()
    if desc:
        text += "。" + desc
    return text[:MAX_CHARS]


def texts_of(title: str, description: str) -> dict[str, str]:
    return {"title": title_text(title), "full": full_text(title, description)}


def name_for(text: str) -> str:
    return hashlib.sha256(f"{VOICE}|{RATE}|{text}".encode("utf-8")).hexdigest()


def path_for(speech_dir: Path, text: str) -> Path:
    sha = name_for(text)
    return speech_dir / sha[:2] / f"{sha}.ogg"


def speech_dir(cfg) -> Path:
    return cfg.data_path / "speech"


def _espeak(text: str, wav: Path, timeout: float) -> None:
    try:
        # The text goes on stdin, never the command line: a title beginning with "-" is not an option.
        p = subprocess.run(["espeak-ng", "-v", VOICE, "-s", str(RATE), "--stdin", "-w", str(wav)],
                           input=text.encode("utf-8"), capture_output=True, timeout=timeout)
    except FileNotFoundError:
        raise EdgenodeError("E_NO_ESPEAK", "espeak-ng is not installed (apt-get install espeak-ng)") from None
    if p.returncode != 0 or not wav.is_file():
        raise EdgenodeError("E_SPEECH", "espeak-ng failed: " + p.stderr.decode("utf-8", "replace")[-200:])


def _encode(cfg, pairs: list[tuple[Path, Path]], timeout: float) -> None:
    """One ffmpeg for the batch: WAV i → ``out_i.tmp`` (Ogg Vorbis, mono, 16 kHz)."""
    cmd = [cfg.media.ffmpeg, "-v", "error", "-y"]
    for wav, _ in pairs:
        cmd += ["-i", str(wav)]
    for i, (_, out) in enumerate(pairs):
        cmd += ["-map", f"{i}:a", "-ac", "1", "-ar", "16000", "-c:a", "libvorbis", "-q:a", "0", "-f", "ogg",
                str(out.with_suffix(".tmp"))]
    p = subprocess.run(cmd, capture_output=True, timeout=timeout)
    if p.returncode != 0:
        raise EdgenodeError("E_SPEECH", "ffmpeg failed: " + p.stderr.decode("utf-8", "replace")[-300:])


def _batch(cfg, items: list[tuple[str, Path]]) -> int:
    import tempfile
    with tempfile.TemporaryDirectory(prefix="speech-", dir=items[0][1].parent.parent) as tmp:
        pairs = []
        for i, (text, out) in enumerate(items):
            wav = Path(tmp) / f"{i}.wav"
            _espeak(text, wav, timeout=60)
            out.parent.mkdir(parents=True, exist_ok=True)
            pairs.append((wav, out))
        _encode(cfg, pairs, timeout=60 + 5 * len(pairs))
        for _, out in pairs:
            os.replace(out.with_suffix(".tmp"), out)
    return len(items)


def generate(cfg, texts: list[str], *, workers: int = 2) -> int:
    """Make the files missing for ``texts`` (in ``workers`` parallel batches); returns how many were made."""
    from concurrent.futures import ThreadPoolExecutor  # here: web workers import this module only to find files
    if not shutil.which("espeak-ng"):
        raise EdgenodeError("E_NO_ESPEAK", "espeak-ng is not installed (apt-get install espeak-ng)")
    root = speech_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    todo, seen = [], set()
    for text in texts:
        out = path_for(root, text)
        if text and out not in seen and not out.is_file():
            seen.add(out)
            todo.append((text, out))
    batches = [todo[i:i + BATCH] for i in range(0, len(todo), BATCH)]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        made = sum(pool.map(lambda b: _batch(cfg, b), batches))
    if made:
        (root / STAMP).touch()  # cached pages (portal/pagecache.py) now gain their 朗读 links
    return made


def stamp(cfg) -> int:
    """When files were last made (0: never): part of the portal's page-cache keys."""
    try:
        # every page view asks: a plain string path, no Path objects
        return os.stat(os.path.join(cfg["data_dir"], "speech", STAMP)).st_mtime_ns
    except OSError:
        return 0
