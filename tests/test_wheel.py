"""The built wheel ships every template, static file and message catalogue: installed into a fresh
venv, the node renders every page (signed in too) and the hub every staff page."""

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Run inside the fresh venv.  Every GET rule without arguments, plus the pages that need a resource.
WALK = r'''
import json, sys
from pathlib import Path
import edgenode
from edgenode.core.config import load_config
from edgenode.core.db import open_main
from edgenode.core.store import open_store
from edgenode.node.app import create_app
from edgenode.node.imports.demo import build_demo
from edgenode.node.web import accounts
from edgenode.hub.app import create_hub_app
from edgenode.hub import staff
from edgenode.hub.database import open_hub

data = Path(sys.argv[1])
cfg = load_config(None, overrides={"data_dir": str(data)})
conn = open_main(cfg)
build_demo(conn, open_store(cfg), cfg)
account = accounts.set_password(conn, "wheel-test-password-1")
rid = conn.execute("SELECT id FROM resources WHERE kind = 'epub' LIMIT 1").fetchone()[0]
conn.close()

out = {"package": edgenode.__file__, "pages": {}}
def walk(app, extra, signin):
    client = app.test_client()
    signin(client)
    for rule in app.url_map.iter_rules():
        if "GET" in rule.methods and not rule.arguments:
            extra.append(rule.rule)
    for path in extra:
        r = client.get(path)
        out["pages"][app.name + " " + path] = [r.status_code, r.mimetype, len(r.data)]

def node_signin(client):
    with client.session_transaction() as s:
        s["admin"], s["admin_gen"] = account["username"], account["generation"]
walk(create_app(cfg), [f"/r/{rid}", f"/r/{rid}/read", "/column/sannong", "/search?q=水稻", "/nope"], node_signin)

hconn = open_hub(cfg)
staff.set_password(hconn, "county", "wheel-test-password-1")
hconn.close()
def hub_signin(client):
    with client.session_transaction() as s:
        s["staff"] = "county"
walk(create_hub_app(cfg), ["/nope"], hub_signin)
print(json.dumps(out, ensure_ascii=False))
'''


def _package_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_the_wheel_ships_everything_and_renders_every_page(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(REPO)],
                   check=True, timeout=300, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (wheel,) = wheels.glob("edgenode-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, timeout=300, capture_output=True)
    # The dependencies come from this venv's site-packages, added as a plain path: its .pth files (the
    # editable install of this checkout) are not processed, so edgenode can only come from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGENODE_CONFIG", "EDGENODE_DATA_DIR")}
    r = subprocess.run([str(py), "-c", WALK, str(tmp_path / "data")], capture_output=True, text=True,
                       timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])

    installed = Path(out["package"]).parent
    assert installed.is_relative_to(site), out["package"]
    missing = sorted(f for f in _package_files(REPO / "edgenode") - _package_files(installed)
                     if not f.endswith(".py"))
    assert missing == []

    pages = out["pages"]
    assert len([p for p in pages if p.startswith("edgenode.node.app ")]) > 20
    assert len([p for p in pages if not p.startswith("edgenode.node.app ")]) > 5
    broken = {p: v for p, v in pages.items() if v[0] >= 500}
    assert broken == {}
    assert pages[next(p for p in pages if p.endswith("/admin/") or p.endswith("/admin"))][0] == 200
    assert all(v[0] == 404 for p, v in pages.items() if p.endswith("/nope"))
