"""The audit log of staff actions (操作记录): who did what, to which node or code, and how it
ended.  The web app records every state-changing request of a logged-in account (and every
refusal of one), logins and log-outs; the ``edgenode hub`` commands record every command
that changes something.  Only 县级管理员 accounts see it (``/audit``, ``edgenode hub audit``).

Passwords, CSRF tokens and enrolment codes never reach the log.
"""

from __future__ import annotations

import getpass
import sqlite3
import time

import click

from edgenode.core.context import Context
from edgenode.core.db import transaction
from edgenode.hub import audit_queries as q

SECRET_FIELDS = {"csrf_token", "password", "code", "new_password"}
MAX_DETAIL = 300
# Commands that only read: everything else under `edgenode hub` is recorded.
READ_ONLY = {"serve", "stats", "nodes", "codes", "key", "audit", "rsyncd-conf", "report", "alerts",
             "keys show", "staff list", "--help"}
ACTIONS_ZH = {  # what the audit page shows for each action
    "hub_auth.login": "登录", "hub_auth.logout": "退出", "login_failed": "登录失败", "login_locked": "登录被锁定",
    "hub_pages.enrol": "生成注册码", "hub_pages.enrol_revoke": "作废注册码", "hub_pages.node_edit": "修改服务点名称或乡镇",
    "hub_pages.node_revoke": "注销服务点", "hub_pages.node_diagnostics_request": "请求诊断包",
    "hub_pages.alert_ack": "确认告警", "hub_pages.alerts_evaluate": "重新检查告警",
}
OUTCOMES_ZH = {"refused": "已拒绝（账户只能查看）", "ok": "完成"}


def record(conn: sqlite3.Connection, username: str, role: str, action: str, *, target: str = "",
           detail: str = "", outcome: str = "ok") -> None:
    with transaction(conn):
        q.insert(conn, time.time(), username, role or "", action, target[:200], detail[:MAX_DETAIL], outcome)


def form_detail(form) -> str:
    """Form fields as ``key=value`` pairs, secrets left out."""
    return "; ".join(f"{k}={v[:80]}" for k, v in form.items(multi=True) if k not in SECRET_FIELDS and v)


def recent(conn: sqlite3.Connection, limit: int = 500, username: str | None = None) -> list[dict]:
    out = []
    for r in q.recent(conn, limit, username):
        r["action_zh"] = ACTIONS_ZH.get(r["action"]) or _cli_zh(r["action"])
        r["outcome_zh"] = OUTCOMES_ZH.get(r["outcome"]) or _outcome_zh(r["outcome"])
        out.append(r)
    return out


def _cli_zh(action: str) -> str:
    return f"命令行：edgenode hub {action[4:]}" if action.startswith("cli:") else "其他操作"


def _outcome_zh(outcome: str) -> str:
    if outcome.isdigit():
        code = int(outcome)
        return "完成" if code < 400 else f"未完成（错误 {code}）"
    return f"未完成（{outcome}）"


def _redacted(args: list[str]) -> list[str]:
    out, hide = [], False
    for a in args:
        out.append("***" if hide else a)
        hide = a in ("--password", "--code")
        if "=" in a and a.split("=", 1)[0] in ("--password", "--code"):
            out[-1] = a.split("=", 1)[0] + "=***"
    return out


class AuditedGroup(click.Group):
    """``edgenode hub``: records each command that changes something in the audit log."""

    def invoke(self, ctx: click.Context):
        # Click keeps the subcommand's name apart from its arguments until it is invoked.
        args = [*(vars(ctx).get("_protected_args") or vars(ctx).get("protected_args") or []), *ctx.args]
        words = [a for a in args if not a.startswith("-")][:2]
        name = " ".join(words[:2]) if words[:1] in (["keys"], ["upstream"], ["staff"]) else " ".join(words[:1])
        if not name or name in READ_ONLY or "--help" in args:
            return super().invoke(ctx)
        outcome = "ok"
        try:
            return super().invoke(ctx)
        except click.ClickException as e:
            outcome = e.format_message().split(":", 1)[0][:40]
            raise
        except BaseException as e:
            outcome = "ok" if isinstance(e, SystemExit) and not e.code else type(e).__name__
            raise
        finally:
            _record_cli(ctx, name, args, outcome)


def _record_cli(ctx: click.Context, name: str, args: list[str], outcome: str) -> None:
    from edgenode.hub.database import open_hub
    try:
        conn = open_hub(ctx.find_object(Context).cfg)
    except Exception:  # no data directory yet: nothing to record into
        return
    try:
        record(conn, f"命令行：{getpass.getuser()}", "admin", f"cli:{name}",
               detail=" ".join(_redacted(args))[:MAX_DETAIL], outcome=outcome)
    finally:
        conn.close()
