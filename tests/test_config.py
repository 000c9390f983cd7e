import json
import re
from pathlib import Path

import pytest

from edgenode.core.config import MASK, SETTINGS, load_config
from edgenode.core.errors import ConfigError


def write(tmp_path, text):
    p = tmp_path / "edgenode.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_a_file():
    cfg = load_config(env={})
    assert cfg.data_dir == "/var/lib/edgenode"
    assert cfg.web.port == 8080
    assert cfg.source == "built-in defaults"


def test_file_then_env_then_override(tmp_path):
    p = write(tmp_path, '[web]\nport = 9000\npage_size = 7\n[node]\nname = "某某村文化服务点"\n')
    cfg = load_config(env={"EDGENODE_CONFIG": str(p), "EDGENODE_WEB_PORT": "9100"},
                      overrides={"web__page_size": 9, "data_dir": str(tmp_path / "d")})
    assert cfg.web.port == 9100
    assert cfg.web.page_size == 9
    assert cfg.node.name == "某某村文化服务点"
    assert cfg.data_path == (tmp_path / "d").resolve()
    assert cfg.source == str(p)


@pytest.mark.parametrize("text, fragment", [
    ('[web]\nprot = 1\n', "key 'web.prot': unknown setting"),
    ('[web]\nport = "eighty"\n', "key 'web.port': must be int, not str"),
    ('[web]\nport = 70000\n', "key 'web.port': must be a TCP port"),
    ('[web]\nport = true\n', "key 'web.port': must be int"),
    ('[log]\nlevel = "LOUD"\n', "key 'log.level': must be one of"),
    ('[store]\nfree_space_floor_mb = -1\n', "key 'store.free_space_floor_mb': must not be negative"),
    ('[web\nport = 1\n', "not valid TOML"),
    ('bogus = 1\n', "key 'bogus': unknown setting"),
])
def test_bad_config_names_file_key_and_reason(tmp_path, text, fragment):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_config(p, env={})
    assert str(p) in e.value.message
    assert fragment in e.value.message


def test_bad_env_value_is_refused():
    with pytest.raises(ConfigError, match="EDGENODE_WEB_PORT: must be int"):
        load_config(env={"EDGENODE_WEB_PORT": "x"})


def test_missing_named_config_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(env={"EDGENODE_CONFIG": str(tmp_path / "nope.toml")})


def test_cli_refuses_broken_config_at_startup(tmp_path):
    from click.testing import CliRunner
    from edgenode.cli import cli
    p = write(tmp_path, '[web]\nport = "x"\n')
    r = CliRunner().invoke(cli, ["--config", str(p), "config", "show"])
    assert r.exit_code == 1
    assert "E_CONFIG" in r.output and str(p) in r.output and "web.port" in r.output


def test_config_show_masks_secrets(tmp_path, runner):
    p = write(tmp_path, '[health]\ntoken = "s3cret-token-value"\n[web]\nsecret_key = "k3y-value"\n')
    r = runner("--config", str(p), "config", "show")
    assert r.exit_code == 0, r.output
    assert "s3cret-token-value" not in r.output and "k3y-value" not in r.output
    assert MASK in r.output
    r = runner("--config", str(p), "config", "show", "--json")
    data = json.loads(r.output)
    assert data["config"]["health"]["token"] == MASK
    assert data["source"] == str(p)


def test_global_data_dir_option_applies(tmp_path, runner):
    r = runner("--data-dir", str(tmp_path / "elsewhere"), "config", "show", "--json")
    assert json.loads(r.output)["config"]["data_dir"] == str((tmp_path / "elsewhere").resolve())


def test_every_setting_is_documented():
    doc = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", doc, flags=re.M))
    assert {s.name for s in SETTINGS} <= documented, "run: python -m edgenode.docgen"
    assert documented <= {s.name for s in SETTINGS}


def test_a_renamed_key_still_reads_with_a_warning(tmp_path, caplog):
    """health.usb_roots became usb.media_roots (one list of stick folders): old files keep working."""
    f = tmp_path / "old.toml"
    f.write_text('[health]\nusb_roots = ["/srv/sticks"]\n')
    cfg = load_config(f, env={})
    assert cfg["usb.media_roots"] == ["/srv/sticks"]
    assert "W_CONFIG_RENAMED" in caplog.text and "usb.media_roots" in caplog.text
    assert load_config(env={"EDGENODE_HEALTH_USB_ROOTS": '["/srv/a"]'})["usb.media_roots"] == ["/srv/a"]
    assert load_config(env={}, overrides={"health__usb_roots": ["/srv/b"]})["usb.media_roots"] == ["/srv/b"]
    assert cfg.replace(health__usb_roots=["/srv/c"])["usb.media_roots"] == ["/srv/c"]


def test_old_and_new_name_together_are_refused(tmp_path):
    f = tmp_path / "both.toml"
    f.write_text('[health]\nusb_roots = ["/a"]\n[usb]\nmedia_roots = ["/b"]\n')
    with pytest.raises(ConfigError) as e:
        load_config(f, env={})
    assert "health.usb_roots" in str(e.value) and "usb.media_roots" in str(e.value)
