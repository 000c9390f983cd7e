"""The health snapshot as Prometheus text exposition (format 0.0.4).

Names follow Prometheus conventions (base units, ``_bytes``/``_seconds``/
``_ratio`` suffixes, timestamps as ``_timestamp_seconds``) so that
``promtool check metrics`` passes; ``tests/test_metrics.py`` runs it.  A value
that is unknown (no import yet, no temperature sensor) is left out rather than
reported as 0, so a dashboard never mistakes "unknown" for "zero".
"""

from __future__ import annotations

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class _Out:
    """Collects families in order; each family gets its HELP and TYPE once."""

    def __init__(self):
        self.lines: list[str] = []
        self._seen: set[str] = set()

    def add(self, name: str, help_: str, value, labels: dict | None = None, kind: str = "gauge") -> None:
        if value is None:
            return
        if name not in self._seen:
            self._seen.add(name)
            self.lines.append(f"# HELP {name} {help_}")
            self.lines.append(f"# TYPE {name} {kind}")
        lab = ""
        if labels:
            lab = "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"
        self.lines.append(f"{name}{lab} {_num(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(snap: dict) -> str:
    o = _Out()
    _render_overview(o, snap)
    if snap.get("system"):
        _render_system(o, snap["system"])
    if snap.get("network"):
        _render_network(o, snap["network"])
    if snap.get("content"):
        _render_content(o, snap["content"])
    if snap.get("sync"):
        _render_sync(o, snap["sync"])
    if snap.get("software"):
        _render_software(o, snap["software"])
    if snap.get("clock"):
        _render_clock(o, snap["clock"])
    return o.text()


def _render_overview(o: _Out, snap: dict) -> None:
    node, software = snap.get("node") or {}, snap.get("software")
    o.add("edgenode_info", "Constant 1, labelled with the node's identity and software.", 1, {
        "node_id": node.get("id", ""), "name": node.get("name", ""), "township": node.get("township", ""),
        "version": (software or {}).get("version", ""), "config_digest": (software or {}).get("config_digest", "")})
    o.add("edgenode_health_snapshot_duration_seconds", "Time taken to build this health snapshot.",
          snap.get("duration_ms", 0) / 1000)
    for section in ("node", "system", "network", "content", "sync", "software", "clock"):
        o.add("edgenode_health_section_ok", "1 when the section could be read, 0 when its probe failed.",
              section not in (snap.get("errors") or {}), {"section": section})
    for w in snap.get("warnings") or []:
        o.add("edgenode_warning_active", "1 for each active health warning.", 1,
              {"code": w["code"], "level": w["level"]})


def _render_system(o: _Out, sysd: dict) -> None:
    cpu = sysd["cpu"]
    o.add("edgenode_cpus", "Number of logical CPUs.", cpu["count"])
    for period, key in (("1m", "load_1m"), ("5m", "load_5m"), ("15m", "load_15m")):
        o.add("edgenode_load_average", "System load average.", cpu[key], {"period": period})
    o.add("edgenode_cpu_usage_ratio", "CPU busy fraction since the previous snapshot.", cpu["percent"] / 100)
    for kind in ("total", "available", "used"):
        o.add("edgenode_memory_bytes", "Physical memory.", sysd["memory"][f"{kind}_bytes"], {"kind": kind})
    for kind in ("total", "used", "free"):
        o.add("edgenode_swap_bytes", "Swap space.", sysd["swap"][f"{kind}_bytes"], {"kind": kind})
    disk = sysd["disk"]
    for kind in ("total", "used", "free"):
        o.add("edgenode_data_disk_bytes", "The disk holding the data directory.", disk[f"{kind}_bytes"],
              {"kind": kind, "mountpoint": disk["mountpoint"]})
    o.add("edgenode_data_disk_usage_ratio", "Used fraction of the data disk.", disk["percent"] / 100,
          {"mountpoint": disk["mountpoint"]})
    o.add("edgenode_boot_time_seconds", "Unix time the system booted.", sysd["boot_time"])
    o.add("edgenode_uptime_seconds", "Seconds since the system booted.", sysd["uptime_s"])
    for t in sysd["temperatures"]:
        o.add("edgenode_temperature_celsius", "Hardware temperature sensors.", t["current_c"],
              {"sensor": t["sensor"], "label": t["label"]})
    o.add("edgenode_process_resident_memory_bytes", "Resident memory of the process serving this snapshot.",
          sysd["process"]["rss_bytes"])


def _render_network(o: _Out, net: dict) -> None:
    for itf in net["interfaces"]:
        if itf["loopback"]:
            continue
        labels = {"interface": itf["name"]}
        o.add("edgenode_network_up", "1 when the interface is up.", itf["up"], labels)
        o.add("edgenode_network_mtu_bytes", "Interface MTU.", itf["mtu"], labels)
        if itf["speed_mbps"]:
            o.add("edgenode_network_speed_bytes_per_second", "Interface link speed.",
                  itf["speed_mbps"] * 1_000_000 // 8, labels)
    o.add("edgenode_network_default_gateway_present", "1 when an IPv4 default route exists.",
          net["gateway"] is not None)


def _render_content(o: _Out, content: dict) -> None:
    for column, n in content["resources"]["by_column"].items():
        o.add("edgenode_content_resources", "Visible resources per column.", n, {"column": column})
    o.add("edgenode_store_blobs", "Blobs recorded in the content store.", content["store"]["blobs"])
    o.add("edgenode_store_size_bytes", "Bytes recorded in the content store.", content["store"]["bytes"])
    o.add("edgenode_store_blobs_not_ok", "Blobs that failed verification or are missing.",
          content["store"]["not_ok"])
    v = content["last_verify"]
    if v:
        o.add("edgenode_last_verify_timestamp_seconds", "When the store was last verified.", v["at"])
        o.add("edgenode_last_verify_ok", "1 when the last verify found nothing bad or missing.", v["ok"])
    imp = content["last_import"]
    if imp and imp["at"]:
        o.add("edgenode_last_import_timestamp_seconds", "When the last bundle import finished.", imp["at"],
              {"result": imp["result"] or ""})


def _render_sync(o: _Out, sync: dict) -> None:
    for kind, job in sync["jobs"].items():
        labels = {"job": kind}
        o.add("edgenode_job_last_attempt_timestamp_seconds", "Start of the newest run of the job.",
              job["last_attempt"], labels)
        o.add("edgenode_job_last_success_timestamp_seconds", "End of the newest successful run.",
              job["last_success"], labels)
        if job["last_error"]:
            o.add("edgenode_job_last_error_timestamp_seconds", "End of the newest failed run.",
                  job["last_error"]["at"], labels)
    o.add("edgenode_sync_last_contact_timestamp_seconds", "Newest successful contact with the hub.",
          sync["last_contact"])
    o.add("edgenode_outbox_batches", "Sealed usage batches waiting for upload.", sync["outbox"]["batches"])
    o.add("edgenode_outbox_size_bytes", "Bytes waiting in the outbox.", sync["outbox"]["bytes"])


def _render_software(o: _Out, software: dict) -> None:
    o.add("edgenode_db_quick_check_ok", "1 when PRAGMA quick_check last returned ok.",
          software["quick_check"]["ok"])
    o.add("edgenode_db_migrations", "Applied schema migrations.", software["migrations"])


def _render_clock(o: _Out, clock: dict) -> None:
    o.add("edgenode_clock_ntp_synchronized", "1 when the clock is NTP-synchronised (absent when unknown).",
          clock["ntp_synchronized"])
    o.add("edgenode_clock_monotonic_seconds", "CLOCK_MONOTONIC, to compare with wall time upstream.",
          clock["monotonic_s"])
    o.add("edgenode_clock_wall_seconds", "Wall-clock time when the snapshot was taken.", clock["wall_time"])
    o.add("edgenode_clock_behind_recorded_seconds", "How far the wall clock is behind the newest recorded time.",
          clock["behind_recorded_s"])
    o.add("edgenode_boots", "Boots counted in the data directory.", clock["boot_count"])
