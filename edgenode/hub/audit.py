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
from edgenode.hub.fleet import PROBLEM_ZH

SECRET_FIELDS = {"csrf_token", "password", "code", "new_password"}
MAX_DETAIL = 300
# Commands that only read: everything else under `edgenode hub` is recorded.
READ_ONLY = {"serve", "stats", "nodes", "codes", "key", "audit", "rsyncd-conf", "report", "alerts",
             "keys show", "staff list", "--help"}
ACTIONS_ZH = {  # what the audit page shows for each action
    "hub_auth.login": "登录", "hub_auth.logout": "退出", "login_failed": "登录失败", "login_locked": "登录被锁定",
    "hub_pages.enrol": "生成注册码", "hub_pages.enrol_revoke": "作废注册码", "hub_pages.node_edit": "修改服务点名称或乡镇",
    "hub_pages.node_revoke": "注销服务点", "hub_pages.node_diagnostics_request": "请求诊断包",
    "hub_pages.problem_note": "确认或暂缓问题", "hub_pages.problem_reopen": "重新列为待处理",
    "hub_pages.alerts_evaluate": "重新检查告警",
    "hub_contrib.adopt": "采用群众作品", "hub_contrib.decline": "不采用群众作品", "hub_contrib.forward": "转送上级",
    "hub_contrib.publish": "发布本县群众作品", "hub_rollout.start": "开始软件更新", "hub_rollout.cancel": "停止软件更新",
    "hub_province_rollout.start": "开始向各县分批更新", "hub_province_rollout.cancel": "停止向各县更新",
}
OUTCOMES_ZH = {"refused": "已拒绝（账户只能查看）", "ok": "完成"}
CLI_ZH = {  # `edgenode hub` commands, as the audit page names them
    "enroll-code": "生成注册码", "revoke": "注销服务点", "rename": "修改服务点名称或乡镇", "publish": "发布内容",
    "usb-tree": "制作内容U盘", "import-logs": "导入U盘上的统计数据", "set-password": "设置密码",
    "staff add": "添加账户", "staff role": "修改账户角色", "request-diagnostics": "请求诊断包",
    "keys rotate": "更换县中心密钥", "keys add": "添加信任的密钥", "keys revoke": "撤销密钥",
    "upstream enroll": "向上级平台注册", "upstream forward": "向上级平台报送", "upstream pull": "从上级平台同步内容",
    "housekeeping": "定时维护", "problems ack": "确认问题", "problems snooze": "暂缓问题",
    "mirror set": "指定乡镇镜像", "mirror remove": "取消乡镇镜像", "live schedule": "发布直播预告",
    "live cancel": "取消直播", "live run": "开始直播", "live publish-recording": "发布直播回看",
    "contrib adopt": "采用群众作品", "contrib decline": "不采用群众作品", "contrib publish": "发布本县群众作品",
    "contrib import-stick": "导入U盘上的群众作品", "rollout start": "开始软件更新", "rollout cancel": "停止软件更新",
    "release publish": "发布软件版本",
}
VALUES_ZH = {"kind": PROBLEM_ZH, "action": {"ack": "确认", "snooze": "暂缓"}}
FIELDS_ZH = {"name": "名称", "township": "乡镇", "confirm": "确认", "hint": "注册码尾号", "reason": "原因",
             "node_id": "服务点", "alert_id": "告警", "until": "暂缓到", "kind": "问题类型",
             "action": "处理方式", "subject": "频道", "hours": "暂缓小时数"}


def record(conn: sqlite3.Connection, username: str, role: str, action: str, *, target: str = "",
           detail: str = "", outcome: str = "ok") -> None:
    with transaction(conn):
        q.insert(conn, time.time(), username, role or "", action, target[:200], detail[:MAX_DETAIL], outcome)


def form_detail(form) -> str:
    """Form fields as ``key=value`` pairs, secrets left out."""
    return "; ".join(f"{k}={v[:80]}" for k, v in form.items(multi=True) if k not in SECRET_FIELDS and v)


def recent(conn: sqlite3.Connection, limit: int = 500, username: str | None = None) -> list[dict]:
    """The newest entries, with what the page shows: ``action_zh``, ``target_zh``, ``detail_zh``, ``outcome_zh``."""
    names = q.node_names(conn)
    out = []
    for r in q.recent(conn, limit, username):
        r["action_zh"] = ACTIONS_ZH.get(r["action"]) or _cli_zh(r["action"])
        r["outcome_zh"] = OUTCOMES_ZH.get(r["outcome"]) or _outcome_zh(r["outcome"])
        r["target_zh"] = "；".join(_field_zh(part, names) for part in r["target"].split(" ") if part)
        r["detail_zh"] = "；".join(_field_zh(part, names) for part in r["detail"].split("; ")
                                  if part and not part.startswith("confirm=")) if not r["action"].startswith("cli:") else ""
        out.append(r)
    return out


def _field_zh(part: str, names: dict[str, str]) -> str:
    key, _, value = part.partition("=")
    if key == "node_id":
        return f"服务点：{names.get(value) or '未命名服务点'}"
    if key in VALUES_ZH:  # coded values (a problem's kind, ack or snooze) read as words, not codes
        value = VALUES_ZH[key].get(value, "其他")
    return f"{FIELDS_ZH.get(key, '其他')}：{value}"


def _cli_zh(action: str) -> str:
    if not action.startswith("cli:"):
        return "其他操作"
    return "命令行：" + CLI_ZH.get(action[4:], "其他命令")


def _outcome_zh(outcome: str) -> str:
    if outcome.isdigit():
        return "完成" if int(outcome) < 400 else "未完成（出错）"
    return "未完成（出错）"  # the error code stays in the row for the command line


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
        record(conn, "服务器命令行", "admin", f"cli:{name}",
               detail=f"({getpass.getuser()}) " + " ".join(_redacted(args))[:MAX_DETAIL], outcome=outcome)
    finally:
        conn.close()
