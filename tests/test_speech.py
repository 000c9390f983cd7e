"""朗读: espeak-ng speech files for every visible resource, made by the job the import hook queues."""

import json
import re
import shutil
import subprocess

import pytest

from edgenode.node.speech import queries as sq
from edgenode.node.speech import voice
from edgenode.node.speech.jobs import run

pytestmark = pytest.mark.skipif(not shutil.which("espeak-ng") or not shutil.which("sox"),
                                reason="needs espeak-ng and sox (provisioning lists)")


def sox_stat(path) -> dict:
    out = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, check=True).stderr
    return {k.strip(): float(v) for k, v in re.findall(r"^([A-Za-z ]+?(?:\([a-z]+\))?):\s+(-?[\d.]+)\s*$", out, re.M)}


@pytest.fixture(scope="module")
def spoken(demo_master, tmp_path_factory):
    """The demo library with its speech files, made once for the module (read-only for the tests)."""
    from edgenode.core.db import open_main
    from tests.conftest import make_config
    from tests.helpers_portal import copy_data
    cfg = make_config(copy_data(demo_master, tmp_path_factory.mktemp("speech") / "data"))
    conn = open_main(cfg)
    run(conn, cfg)
    conn.close()
    return cfg


def test_every_visible_resource_is_spoken_audibly_at_a_plausible_length(spoken):
    from edgenode.core.db import open_main
    conn = open_main(spoken)
    rows = sq.visible_texts(conn)
    conn.close()
    assert len(rows) >= 18
    for r in rows:
        for part, text in voice.texts_of(r["title"], r["description"]).items():
            path = voice.path_for(voice.speech_dir(spoken), text)
            assert path.is_file(), (r["title"], part)
            st = sox_stat(path)
            assert st["Length (seconds)"] >= 0.1 * len(text), (text, st["Length (seconds)"])
            assert st["RMS     amplitude"] > 0.01 and st["Maximum amplitude"] > 0.1, (text, st)  # not silence
            assert path.stat().st_size < 40_000 + 4_000 * st["Length (seconds)"]  # small: ~4 KB a second


def test_the_portal_serves_and_links_them(spoken, demo_cfg):
    from edgenode.node.app import create_app
    client = create_app(demo_cfg).test_client()
    assert "朗读" not in client.get("/search?q=故事").get_data(as_text=True)  # cached before speech exists
    # Files are named by what they say, so the module's are this copy's too (with the stamp).
    shutil.copytree(voice.speech_dir(spoken), voice.speech_dir(demo_cfg))
    assert 'class="speak" href="/speech/demo-07/title.ogg"' in client.get("/search?q=故事").get_data(as_text=True)
    page = client.get("/r/demo-07").get_data(as_text=True)
    full = re.search(r'<audio controls preload="none" src="(/speech/demo-07/full\.ogg)"', page).group(1)
    assert '<a class="button" href="/speech/demo-07/full.ogg">🔊 朗读</a>' in page
    r = client.get(full)
    assert r.status_code == 200 and r.mimetype == "audio/ogg" and r.data[:4] == b"OggS"
    listing = client.get("/column/pushi").get_data(as_text=True)
    assert 'class="speak" href="/speech/demo-07/title.ogg"' in listing
    assert client.get("/speech/demo-07/title.ogg").status_code == 200


@pytest.mark.parametrize("path", ["/speech/demo-07/../../secret_key.ogg", "/speech/demo-07/other.ogg",
                                  "/speech/nosuch/title.ogg", "/speech/..%2Fsecret_key/title.ogg",
                                  "/speech/demo-07/title.wav"])
def test_nothing_else_is_served(spoken, path):
    from edgenode.node.app import create_app
    assert create_app(spoken).test_client().get(path).status_code == 404


def test_a_withdrawn_resource_is_not_served(spoken, demo_cfg, demo_conn):
    from edgenode.core.db import transaction
    from edgenode.node.app import create_app
    from edgenode.node.catalog import queries as q
    shutil.copytree(voice.speech_dir(spoken), voice.speech_dir(demo_cfg))
    client = create_app(demo_cfg).test_client()
    assert client.get("/speech/demo-07/title.ogg").status_code == 200
    with transaction(demo_conn):
        q.withdraw(demo_conn, "demo-07")
    assert client.get("/speech/demo-07/title.ogg").status_code == 404


def test_an_import_queues_its_resources_and_the_job_speaks_them(tmp_path, cfg):
    from edgenode.core.db import open_main
    from edgenode.core.store import open_store
    from edgenode.node.imports.pipeline import import_bundle
    from tests.helpers_bundles import make_bundle, new_key, trust_key
    conn = open_main(cfg)
    sk = new_key(tmp_path)
    trust_key(conn, sk)
    import_bundle(cfg, conn, open_store(cfg), make_bundle(tmp_path, sk, n=2), source="usb")
    rows = sq.queued(conn, 10)
    assert sorted(r["title"] for r in rows) == ["农技资料 0", "农技资料 1"]  # queued in the import's transaction
    assert run(conn, cfg, workers=1)["made"] == 4  # title and title+description of each
    assert sq.queue_length(conn) == 0
    for r in rows:
        assert voice.path_for(voice.speech_dir(cfg), voice.title_text(r["title"])).is_file()
    conn.close()


def test_hostile_titles_are_text_not_options(cfg):
    texts = ["--help", "-w /tmp/evil.wav", "$(reboot)", "第1集\n\n\t"]
    assert voice.generate(cfg, texts, workers=1) == len(texts)
    for t in texts:
        assert voice.path_for(voice.speech_dir(cfg), t).stat().st_size > 1000


def test_cli_speech_run(spoken):
    from click.testing import CliRunner
    from edgenode.cli import cli
    r = CliRunner().invoke(cli, ["--data-dir", str(spoken.data_path), "speech", "run", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["made"] == 0  # all made already by the fixture
