"""The built-in demo library: real, small media made locally by ffmpeg.

Nothing is downloaded.  Sources are cached under DATA_DIR/demo-src so a second
run only checks; resource ids are fixed, so the command is idempotent.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from edgenode.node.catalog import queries as q
from edgenode.node.catalog import series_queries as sq
from edgenode.core.db import transaction
from edgenode.node.imports.add import add_file
from edgenode.core.errors import EdgenodeError

# id, column, kind/recipe, title, description, tags
DEMO = [
    ("demo-01", "sannong", ("video", "testsrc2", 330), "水稻种植技术要点",
     "从育秧、插秧到田间管理，讲解水稻高产稳产的关键环节，适合种粮大户和合作社学习。", ["农技", "种植"]),
    ("demo-02", "sannong", ("video", "smptebars", 220), "生猪科学养殖入门",
     "猪舍建设、饲料配比与常见疫病预防，帮助养殖户提高出栏率。", ["养殖", "农技"]),
    ("demo-03", "sannong", ("video", "rgbtestsrc", 550), "淡水鱼养殖与鱼病防治",
     "池塘清塘、鱼苗投放、水质调控和常见鱼病的识别与处理。", ["养殖"]),
    ("demo-04", "sannong", ("pdf",), "果树冬季修剪手册",
     "苹果、梨、桃等果树冬季修剪的时间、方法和注意事项，图文对照。", ["农技", "果树"]),
    ("demo-05", "sannong", ("audio", 392), "农家广播：蔬菜大棚冬季管理",
     "大棚保温、通风与病虫害防治的实用经验，边干活边收听。", ["广播", "种植"]),
    ("demo-06", "pushi", ("video", "testsrc2", 660), "戏曲选段：花木兰",
     "豫剧经典唱段《谁说女子不如男》，唱腔高亢，家喻户晓。", ["戏曲"]),
    ("demo-07", "pushi", ("audio", 523), "儿童故事：小蝌蚪找妈妈",
     "小蝌蚪一路问询，终于找到青蛙妈妈的故事，适合学龄前儿童收听。", ["少儿", "故事"]),
    ("demo-08", "pushi", ("epub",), "唐诗选读",
     "精选二十首唐诗，附注音和浅显的讲解，适合亲子共读。", ["少儿", "阅读"]),
    ("demo-09", "pushi", ("video", "testsrc", 440), "广场舞教学：茉莉花",
     "分解动作慢速教学，跟着视频一步一步学会整套广场舞。", ["舞蹈", "健身"]),
    ("demo-10", "xinchengshi", ("video", "smptehdbars", 300), "进城务工安全生产常识",
     "建筑工地和工厂车间的安全规范、劳动防护用品的正确使用。", ["务工", "安全"]),
    ("demo-11", "xinchengshi", ("pdf",), "农民工劳动合同与维权指南",
     "签订劳动合同要注意什么，工资被拖欠时如何依法维权。", ["务工", "法律"]),
    ("demo-12", "xinchengshi", ("audio", 660), "普通话日常用语",
     "问路、购物、就医等场景的常用普通话对话练习。", ["学习"]),
    ("demo-13", "shequ", ("video", "yuvtestsrc", 250), "老年人防范电信诈骗",
     "冒充公检法、养老投资等常见骗局的识别方法，守好养老钱。", ["安全", "老年"]),
    ("demo-14", "shequ", ("pdf",), "城乡居民医保报销办事指南",
     "医保参保、异地就医备案与报销所需材料和流程。", ["办事指南"]),
    ("demo-15", "shequ", ("audio", 294), "健康讲座：高血压的日常护理",
     "合理饮食、适量运动与按时服药，控制血压的日常要点。", ["健康", "老年"]),
    # The children's corner (issue 19): cartoon episodes and a nursery rhyme.
    ("demo-16", "pushi", ("video", "smptebars", 523), "动画片：小兔乖乖 第1集",
     "兔妈妈出门前叮嘱小兔子们：不认识的人来敲门，千万不要开。", ["少儿", "动画"]),
    ("demo-17", "pushi", ("video", "testsrc2", 587), "动画片：小兔乖乖 第2集",
     "大灰狼学着兔妈妈的声音来敲门，小兔子们会开门吗？", ["少儿", "动画"]),
    ("demo-18", "pushi", ("audio", 440), "儿歌：两只老虎",
     "两只老虎，两只老虎，跑得快，跑得快。朗朗上口的经典儿歌。", ["少儿", "儿歌"]),
]

# A small series (系列), so `make run` shows a series page, episodes in order and 继续观看.
DEMO_SERIES = {"id": "demo-jiyang", "title": "科学养鸡系列讲座", "column": "sannong", "tags": ["养鸡"],
               "description": "从鸡舍、鸡苗到防疫，三集讲清楚散养土鸡的要点。"}
DEMO_EPISODES = [
    ("demo-jiyang-01", ("video", "testsrc2", 350), "鸡舍建设与消毒", "鸡舍选址、通风和进鸡前的消毒。"),
    ("demo-jiyang-02", ("video", "testsrc2", 370), "鸡苗的选择与育雏", "挑选健康鸡苗，育雏期的温度与饮水。"),
    ("demo-jiyang-03", ("video", "testsrc2", 390), "常见鸡病的预防", "新城疫、禽流感的免疫程序与日常观察。"),
]
DEMO_VTT = ("WEBVTT\n\n00:00:00.500 --> 00:00:03.500\n大家好，今天讲鸡舍建设。\n\n"
            "00:00:04.000 --> 00:00:07.500\n鸡舍要通风、向阳、干燥。\n").encode("utf-8")


def _ffmpeg(cfg, args: list[str]) -> None:
    try:
        p = subprocess.run([cfg.media.ffmpeg, "-v", "error", "-y", *args], capture_output=True, timeout=120)
    except FileNotFoundError:
        raise EdgenodeError("E_NO_FFMPEG", "ffmpeg is not installed (apt-get install ffmpeg)") from None
    if p.returncode != 0:
        raise EdgenodeError("E_DEMO", "ffmpeg failed: " + p.stderr.decode("utf-8", "replace")[-300:])


def _video(cfg, out: Path, source: str, freq: int) -> None:
    _ffmpeg(cfg, ["-f", "lavfi", "-i", f"{source}=duration=8:size=320x240:rate=25",
                  "-f", "lavfi", "-i", f"sine=frequency={freq}:duration=8",
                  "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
                  "-movflags", "+faststart", "-shortest", str(out)])


def _audio(cfg, out: Path, freq: int) -> None:
    _ffmpeg(cfg, ["-f", "lavfi", "-i", f"sine=frequency={freq}:duration=12",
                  "-af", "volume=0.3", "-c:a", "libmp3lame", "-b:a", "64k", str(out)])


def write_pdf(out: Path, title: str, body: str) -> None:
    """A small valid PDF whose Chinese text uses the standard STSong-Light CID font."""

    def utf16(s: str) -> str:
        return "<FEFF" + s.encode("utf-16-be").hex().upper() + ">"

    lines = [title, ""] + [body[i:i + 18] for i in range(0, len(body), 18)]
    text = ["BT", "/F1 20 Tf", "60 760 Td", "26 TL"]
    for line in lines:
        text += [f"{utf16(line) if line else '()'} Tj", "T*"]
    text += ["ET", "0.2 0.5 0.3 rg 60 80 475 8 re f"]
    stream = "\n".join(text).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H "
        b"/DescendantFonts [6 0 R] >>",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> /FontDescriptor 7 0 R >>",
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 /FontBBox [-25 -254 1000 880] "
        b"/ItalicAngle 0 /Ascent 880 /Descent -120 /CapHeight 880 /StemV 93 >>",
    ]
    buf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(buf))
        buf += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(buf)
    buf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        buf += b"%010d 00000 n \n" % off
    buf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    out.write_bytes(bytes(buf))


POEMS = [("静夜思", "李白", "床前明月光，疑是地上霜。举头望明月，低头思故乡。"),
         ("春晓", "孟浩然", "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"),
         ("悯农", "李绅", "锄禾日当午，汗滴禾下土。谁知盘中餐，粒粒皆辛苦。")]


def write_epub(out: Path, title: str) -> None:
    chapters = []
    for i, (name, author, text) in enumerate(POEMS, 1):
        body = "".join(f"<p>{line}。</p>" for line in text.rstrip("。").split("。"))
        chapters.append((f"c{i}.xhtml", name, f'<?xml version="1.0" encoding="utf-8"?>\n'
                         f'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="zh-CN"><head><title>{name}</title>'
                         f'</head><body><h1>{name}</h1><p>{author}</p>{body}</body></html>'))
    manifest = "".join(f'<item id="c{i}" href="{f}" media-type="application/xhtml+xml"/>'
                       for i, (f, _, _) in enumerate(chapters, 1))
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(1, len(chapters) + 1))
    nav_items = "".join(f'<li><a href="{f}">{n}</a></li>' for f, n, _ in chapters)
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0"?><container version="1.0" '
                   'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
                   '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
                   '</rootfiles></container>', compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("OEBPS/content.opf",
                   '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" '
                   'version="3.0" unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
                   f'<dc:identifier id="id">edgenode-demo-epub</dc:identifier><dc:title>{title}</dc:title>'
                   '<dc:language>zh-CN</dc:language></metadata><manifest>'
                   '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
                   f'{manifest}</manifest><spine>{spine}</spine></package>', compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("OEBPS/nav.xhtml",
                   '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
                   'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>目录</title></head><body>'
                   f'<nav epub:type="toc"><ol>{nav_items}</ol></nav></body></html>',
                   compress_type=zipfile.ZIP_DEFLATED)
        for f, _, html in chapters:
            z.writestr(f"OEBPS/{f}", html, compress_type=zipfile.ZIP_DEFLATED)


def make_source(cfg, src_dir: Path, item: tuple) -> Path:
    rid, _col, recipe, title, desc, _tags = item
    kind = recipe[0]
    ext = {"video": "mp4", "audio": "mp3", "pdf": "pdf", "epub": "epub"}[kind]
    out = src_dir / f"{rid}.{ext}"
    if out.is_file() and out.stat().st_size > 0:
        return out
    tmp = src_dir / f".{rid}.tmp.{ext}"
    if kind == "video":
        _video(cfg, tmp, recipe[1], recipe[2])
    elif kind == "audio":
        _audio(cfg, tmp, recipe[1])
    elif kind == "pdf":
        write_pdf(tmp, title, desc)
    else:
        write_epub(tmp, title)
    tmp.replace(out)
    return out


def build_demo(conn, store, cfg) -> dict:
    src_dir = cfg.data_path / "demo-src"
    src_dir.mkdir(parents=True, exist_ok=True)
    added = present = 0
    for i, item in enumerate(DEMO):
        rid, column, _recipe, title, desc, tags = item
        if q.is_visible(conn, rid):
            present += 1
            continue
        path = make_source(cfg, src_dir, item)
        # Spread added times so "new arrivals" has an order.
        add_file(conn, store, cfg, path, {"title": title, "description": desc, "column": column, "tags": tags},
                 resource_id=rid, source="demo", added_at=1_700_000_000 + i * 3600)
        added += 1
    added += _demo_series(conn, store, cfg, src_dir)
    return {"added": added, "present": present, "total": len(DEMO) + len(DEMO_EPISODES)}


def _demo_series(conn, store, cfg, src_dir: Path) -> int:
    with transaction(conn):
        num = sq.upsert_series(conn, DEMO_SERIES, channel=None, source="demo")
    added = 0
    for n, (rid, recipe, title, desc) in enumerate(DEMO_EPISODES, 1):
        if q.is_visible(conn, rid):
            continue
        path = make_source(cfg, src_dir, (rid, DEMO_SERIES["column"], recipe, title, desc, []))
        add_file(conn, store, cfg, path, {"title": title, "description": desc, "column": DEMO_SERIES["column"],
                                          "tags": DEMO_SERIES["tags"]}, resource_id=rid, source="demo",
                 added_at=1_700_000_000 + (len(DEMO) + n) * 3600, episode=(num, None, n),
                 subtitles=[("zh", "中文", DEMO_VTT)] if n == 1 else ())
        added += 1
    return added
