import click
from click.testing import CliRunner

from edgenode.cli import cli


def walk(group, path=()):
    for name, cmd in group.commands.items():
        yield path + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, path + (name,))


def test_every_command_has_help():
    seen = 0
    for path, cmd in walk(cli):
        r = CliRunner().invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert "Usage:" in r.output and (cmd.help or cmd.short_help), path
        seen += 1
    assert seen >= 10


def test_version():
    r = CliRunner().invoke(cli, ["--version"])
    assert r.exit_code == 0 and "edgenode" in r.output


def test_demo_is_idempotent(demo_cfg):
    r = CliRunner().invoke(cli, ["--data-dir", str(demo_cfg.data_path), "demo", "--json"])
    assert r.exit_code == 0, r.output
    assert '"added": 0' in r.output and '"present": 18' in r.output
