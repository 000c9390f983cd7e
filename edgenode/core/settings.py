"""Every setting, declared once: name, type, default, help, and the check that refuses a bad value.

``core/config.py`` loads and validates against this list; ``docs/configuration.md``
is checked against it by a test.  Keep each area's settings together under its
comment, so one area's settings read as one table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from edgenode.core.sections import DEFAULT_SECTIONS, SECTION_ICONS


@dataclass(frozen=True)
class Setting:
    name: str  # dotted: "section.key", or a bare top-level key
    type: type
    default: Any
    help: str
    secret: bool = False
    choices: tuple | None = None
    check: Callable[[Any], str | None] | None = None  # returns a reason when invalid

    @property
    def env(self) -> str:
        return "EDGENODE_" + self.name.replace(".", "_").upper()


def _positive(v):
    return None if v > 0 else "must be greater than 0"


def _non_negative(v):
    return None if v >= 0 else "must not be negative"


def _port(v):
    return None if 0 < v < 65536 else "must be a TCP port between 1 and 65535"


def _str_list(v):
    return None if all(isinstance(x, str) and x for x in v) else "must be a list of non-empty strings"


def _rings(v):
    ok = v and all(isinstance(x, str) and re.fullmatch(r"all|[0-9]+%?", x.strip().lower()) for x in v)
    return None if ok else 'must be a list of ring sizes: a count, a percentage or "all", e.g. ["1", "10%", "all"]'


def _sections(v):
    from edgenode.core.sections import check_sections  # the sections' grammar lives with their defaults
    return check_sections(v)


def _windows(v):
    from edgenode.core.windows import check_windows  # the window grammar lives with its parser
    return check_windows(v)


def _idle_hours(v):
    from edgenode.core.idle import check_idle_hours  # the grammar lives with its parser
    return check_idle_hours(v)


def _percent(v):
    return None if 0 <= v <= 100 else "must be a percentage between 0 and 100"


SETTINGS: list[Setting] = [
    Setting("data_dir", str, "/var/lib/edgenode", "Where the database, content store and outbox live."),
    # node identity
    Setting("node.name", str, "文化服务点", "The point's name as villagers see it, e.g. 某某村文化服务点."),
    Setting("node.township", str, "", "The township (乡镇) this point belongs to; shown at the hub."),
    # web
    Setting("web.host", str, "0.0.0.0", "Address the built-in server listens on."),
    Setting("web.port", int, 8080, "Port the built-in server listens on.", check=_port),
    Setting("web.secret_key", str, "", "Session signing key. Empty: generated once into DATA_DIR/secret_key.", secret=True),
    Setting("web.accel_redirect", bool, False,
            "Production mode: answer media with X-Accel-Redirect so nginx, not Python, sends the bytes."),
    Setting("web.page_size", int, 20, "Items per page in columns, tags and search.", check=_positive),
    Setting("web.login_max_failures", int, 5, "Failed admin logins before the account locks.", check=_positive),
    Setting("web.login_lockout_seconds", int, 900, "How long the admin login stays locked.", check=_positive),
    Setting("web.beacon_interval_seconds", int, 15, "How often the player reports progress.", check=_positive),
    Setting("web.subtitles_default", bool, True,
            "Subtitles carried by a video are shown from the start (the county's choice; viewers can turn them off)."),
    Setting("portal.sections", list, DEFAULT_SECTIONS,
            "The home page's sections in plain words: a list of tables {key, name, icon, columns, tags, subs, "
            "children}; a resource belongs to a section when its column or one of its tags is listed. "
            f"icon: one of {', '.join(SECTION_ICONS)}. children = true shows the picture-card corner.",
            check=_sections),
    # content store
    Setting("db.busy_timeout_ms", int, 10_000,
            "How long a write waits for another process's transaction before giving up with "
            "E_DB_BUSY (an import is then recorded as failed and retried at the next scan or stick).",
            check=_positive),
    Setting("store.free_space_floor_mb", int, 250,
            "Imports stop before the data disk's free space would fall below this.", check=_non_negative),
    Setting("store.quota_gb", float, 0.0, "Maximum content store size in GB; 0 means no quota.",
            check=_non_negative),
    # storage: subscriptions, eviction, transcoding (edgenode/node/storage/, docs/storage.md)
    Setting("storage.default_subscription", str, "always", "Subscription of a channel not listed below.",
            choices=("always", "on_demand", "never")),
    Setting("storage.always", list, [], "Channels kept in full and pinned: never evicted.", check=_str_list),
    Setting("storage.on_demand", list, [],
            "Channels imported as metadata only; a file is fetched once a villager requests it.", check=_str_list),
    Setting("storage.never", list, [], "Channels not kept at all (a USB stick may still carry them).",
            check=_str_list),
    Setting("storage.fresh_days", float, 14.0, "Never evict a resource added fewer than this many days ago.",
            check=_non_negative),
    Setting("transcode.enabled", bool, True, "Convert video and audio browsers cannot play to H.264/AAC MP4."),
    Setting("transcode.idle_hours", list, ["22:00-07:00"],
            "Local times when transcoding may run (reading room closed), e.g. [\"22:00-07:00\"]; empty: never.",
            check=_idle_hours),
    Setting("transcode.keep_original", bool, False, "Keep the original file after a successful transcode."),
    Setting("transcode.preset", str, "veryfast", "libx264 preset (speed against size).",
            choices=("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")),
    Setting("transcode.crf", int, 23, "libx264 quality (lower is better and larger).", check=_non_negative),
    Setting("transcode.max_attempts", int, 3, "Give up on a file after this many failed transcodes.",
            check=_positive),
    # media
    Setting("media.ffmpeg", str, "ffmpeg", "The ffmpeg executable."),
    Setting("media.ffprobe", str, "ffprobe", "The ffprobe executable."),
    Setting("media.probe_timeout_seconds", int, 60, "Give up probing a file after this long.", check=_positive),
    # bundles and their sources (USB sticks, satellite spool)
    Setting("bundles.max_manifest_kb", int, 4096, "Largest manifest.json accepted, in KiB.", check=_positive),
    Setting("bundles.hook_command", str, "",
            "Run after each USB or spool import (status LED, beep); gets EDGENODE_IMPORT_RESULT=ok|failed "
            "and EDGENODE_IMPORT_SUMMARY. Empty: none."),
    Setting("usb.media_roots", list, ["/media", "/run/media", "/mnt"],
            "Where USB sticks get mounted: `edgenode usb watch` imports new mounts under these, and the admin "
            "pages offer writable mounts under these for usage logs and diagnostics.", check=_str_list),
    Setting("usb.poll_seconds", int, 5, "How often `edgenode usb watch` reads the mount table.", check=_positive),
    Setting("usb.mount_dir", str, "/run/edgenode/usb",
            "Where `edgenode usb import DEVICE` mounts a stick (read-only, nosuid, nodev, noexec)."),
    Setting("spool.dir", str, "", "The satellite receiver's drop directory. Empty: no spool."),
    Setting("spool.stale_hours", float, 48.0,
            "An incomplete bundle untouched this long is reported (never deleted).", check=_positive),
    Setting("spool.after_import", str, "archive", "What to do with an imported bundle in the spool.",
            choices=("archive", "remove", "keep")),
    Setting("spool.archive_dir", str, "", "Where imported spool bundles go. Empty: SPOOL_DIR/.imported."),
    # health
    Setting("health.token", str, "", "Bearer token county staff use for the full /api/health. Empty: only the minimal form.",
            secret=True),
    Setting("health.disk_warn_percent", float, 90.0, "Warn when the data disk is fuller than this.", check=_percent),
    Setting("health.sync_warn_days", float, 3.0, "Warn when no sync succeeded for this many days.", check=_positive),
    Setting("health.clock_warn_unsynced", bool, True,
            "Warn 时钟未同步 when the kernel (or timedatectl) says the clock is not NTP-synchronised."),
    Setting("health.clock_behind_warn_seconds", float, 600.0,
            "Warn when the wall clock is this far behind the newest time the node has recorded (clock went back).",
            check=_positive),
    Setting("health.metrics_public", bool, False,
            "Serve /metrics to anyone on the LAN. False: it needs the health.token bearer token."),
    Setting("health.log_files", list, [],
            "Log files or directories put into diagnostics when journald has nothing (DATA_DIR/logs always is).",
            check=_str_list),
    # LAN discovery (mDNS via python-zeroconf; docs/discovery.md)
    Setting("discovery.enabled", bool, True, "Advertise the portal on the LAN with mDNS (`edgenode advertise`)."),
    Setting("discovery.hostname", str, "edgenode",
            "Fixed mDNS host name, without .local: terminals can open http://edgenode.local/."),
    Setting("discovery.port", int, 0, "Port advertised for the portal; 0 means web.port (nginx in production: 80).",
            check=_non_negative),
    Setting("discovery.path", str, "/", "Portal path advertised in the TXT record."),
    Setting("discovery.interfaces", list, [], "Interfaces whose addresses are advertised; empty: every LAN interface.",
            check=_str_list),
    Setting("discovery.poll_seconds", float, 5.0, "How often the advertiser looks for address changes.",
            check=_positive),
    # county hub (edgenode hub ...)
    Setting("hub.name", str, "县级支中心", "The hub's name as county staff and enrolling nodes see it."),
    Setting("hub.host", str, "0.0.0.0", "Address `edgenode hub serve` listens on."),
    Setting("hub.port", int, 8090, "Port `edgenode hub serve` listens on.", check=_port),
    Setting("hub.late_hours", float, 26.0, "A node whose last heartbeat is older than this shows as late.",
            check=_positive),
    Setting("hub.offline_days", float, 3.0, "A node silent for longer than this shows as offline and raises an alert.",
            check=_positive),
    Setting("hub.alert_disk_percent", float, 90.0, "Alert when a node's data disk is fuller than this.", check=_percent),
    Setting("hub.alert_behind", int, 2, "Alert when a node is more than this many sequences behind on a channel.",
            check=_non_negative),
    Setting("hub.alert_clock_minutes", float, 10.0,
            "Alert when a node's clock differs from the hub's by more than this many minutes.", check=_positive),
    Setting("hub.alert_backlog_batches", int, 20,
            "A node holding this many usage batches it has not uploaded shows as 上传积压 (upload backlog).",
            check=_positive),
    Setting("hub.alert_refusal_days", float, 3.0,
            "Uploads the hub refused in the last this many days, after the node's last stored batch, "
            "show as 上传被拒收.", check=_positive),
    Setting("hub.alert_county_offline_percent", float, 10.0,
            "Province view: a county whose share of offline, late or never-reporting nodes reaches this shows as "
            "a problem.", check=_percent),
    Setting("hub.fleet_cache_seconds", float, 10.0,
            "The dashboard and the fleet table show the fleet as of about this many seconds ago (per web worker, "
            "rebuilt beside the pages); 0: computed for every page.", check=_non_negative),
    Setting("hub.webhook_url", str, "", "POST new alerts as JSON to this URL. Empty: no webhook."),
    Setting("hub.heartbeat_history", int, 200, "Heartbeats kept per node for trend charts.", check=_positive),
    Setting("hub.enroll_code_days", float, 14.0, "A one-time enrolment code expires after this many days.",
            check=_positive),
    Setting("hub.max_batch_mb", int, 16, "Largest usage batch the hub accepts in one upload.", check=_positive),
    Setting("hub.utc_offset_hours", float, 8.0,
            "Time zone of the statistics days (China: 8); nodes use it too when they summarise old batches."),
    Setting("hub.rsync_hosts_allow", str, "127.0.0.1",
            "Hosts allowed to pull from the hub's rsync module (rsyncd `hosts allow`)."),
    Setting("hub.rsync_port", int, 8730, "Port of the hub's rsync daemon.", check=_port),
    Setting("hub.upstream_url", str, "", "URL of the upstream (e.g. provincial) hub. Empty: this is the top tier."),
    Setting("hub.upstream_rsync_url", str, "",
            "The upstream hub's channels, e.g. rsync://province.example:8730/edgenode/channels/, pulled and "
            "republished by `edgenode hub upstream pull` (edgenode-hub-pull.timer). Empty: no pull."),
    Setting("hub.upstream_keys", list, [],
            "The upstream hub's minisign public key files: only bundles signed by one of them are republished.",
            check=_str_list),
    Setting("hub.channels", list, ["sannong", "pushi", "xinchengshi", "shequ"],
            "Channels the county key signs for. Nodes trust it for these when they enrol (docs/hub.md, "
            "\"Trust that arrives with enrolment\").", check=_str_list),
    Setting("hub.rollout_default_rings", list, ["1", "10%", "all"],
            "The rings a county hub rolls a release out in when its province's rollout asks for it "
            "(docs/updates.md, \"A province's rollout\").", check=_rings),
    Setting("hub.rollout_max_fail_share", float, 0.1, "A rollout halts by itself when more than this share of "
            "the nodes told to update have rolled back.", check=_non_negative),
    Setting("hub.security_update_days", float, 14.0, "Nodes with Debian security updates pending longer than this "
            "are flagged.", check=_positive),
    Setting("hub.metrics_token", str, "", "Bearer token a Prometheus scraper uses for the hub's /metrics. "
            "Empty: staff login only.", secret=True),
    Setting("hub.secret_key", str, "", "Staff session signing key. Empty: generated once into DATA_DIR/hub_secret_key.",
            secret=True),
    Setting("hub.web_seed_url", str, "", "The published tree over HTTP, e.g. http://hub/edgenode/: each bundle's "
            ".torrent gets it as web seed (BEP 19). Empty: no torrents."),
    # sync with the county hub (node side: edgenode/node/sync/, docs/sync.md)
    Setting("sync.hub_url", str, "", "The county hub's URL. Empty: the one recorded by `edgenode enroll` (none: no uplink)."),
    Setting("sync.rsync_url", str, "",
            "The hub's rsync module, e.g. rsync://hub.example:8730/edgenode. Empty: no content pull."),
    Setting("sync.channels", list, [], "Channels to pull from the hub, e.g. [\"sannong\"].", check=_str_list),
    Setting("sync.windows", list, [],
            "Allowed link windows: tables with start, end (HH:MM), days, bwlimit (KiB/s), jobs. Empty: any time.",
            check=_windows),
    Setting("sync.outbox_cap_mb", float, 64.0,
            "Above this outbox size the oldest batches are summarised into daily aggregates, never dropped.",
            check=_positive),
    Setting("sync.batch_max_events", int, 50000, "Most events sealed into one usage batch.", check=_positive),
    Setting("sync.http_timeout_seconds", int, 60, "Give up on one hub request after this long.", check=_positive),
    Setting("sync.rsync_timeout_seconds", int, 120, "rsync --timeout: stop a pull that moves no data for this long.",
            check=_positive),
    Setting("sync.rsync_retries", int, 3, "Retries of a pull cut off by the link within one window.",
            check=_non_negative),
    Setting("sync.backoff_initial_seconds", int, 60, "Wait after the first failed link probe.", check=_positive),
    Setting("sync.backoff_max_seconds", int, 3600, "The longest wait between link probes.", check=_positive),
    Setting("sync.pull_minutes", int, 60, "How often the scheduler tries a content pull.", check=_positive),
    Setting("sync.uplink_minutes", int, 30, "How often the scheduler seals and sends usage batches.", check=_positive),
    Setting("sync.heartbeat_minutes", int, 15, "How often the scheduler sends a heartbeat.", check=_positive),
    Setting("sync.spool_scan_minutes", int, 5, "How often the scheduler scans the satellite spool.", check=_positive),
    Setting("sync.housekeeping_hours", int, 24, "How often the store is checked, garbage-collected and vacuumed.",
            check=_positive),
    # software updates (node side: edgenode/node/updates/, docs/updates.md)
    Setting("updates.hours", list, ["01:00-05:00"],
            "When the scheduler may install a staged release (local time; the portal is down a few seconds).",
            check=_idle_hours),
    Setting("updates.check_minutes", int, 15, "How often the scheduler looks for a staged release to install.",
            check=_positive),
    Setting("updates.releases_dir", str, "/opt/edgenode-releases", "Where release directories are built."),
    Setting("updates.current_link", str, "/opt/edgenode", "The symlink naming the running release."),
    Setting("updates.python", str, "/usr/bin/python3", "The interpreter new release venvs are made with."),
    Setting("updates.stop_command", str, "systemctl stop edgenode-web.service edgenode-scheduler.service",
            "Stops the portal and scheduler before the switch."),
    Setting("updates.start_command", str, "systemctl start edgenode-web.service edgenode-scheduler.service",
            "Starts them again (on the new release, or the old one after a rollback)."),
    Setting("updates.launcher", str, "path", "How the scheduler starts the updater outside its own service: "
            "a request file that edgenode-update.path turns into edgenode-update.service (root), a transient "
            "unit (systemd-run, when the scheduler may start units), or a detached process (no systemd).",
            choices=("path", "systemd-run", "detach")),
    Setting("updates.portal_url", str, "http://127.0.0.1/", "The portal through nginx, for the health gate."),
    Setting("updates.gate_seconds", float, 90.0, "How long the health gate waits for every check to pass.",
            check=_positive),
    Setting("updates.dpkg_root", str, "/", "Where the Debian packages a release carries are installed "
            "(dpkg --root); another root only for tests."),
    Setting("updates.require_hub", bool, True, "An enrolled node installs a release only when the hub's rollout "
            "tells it to; a node never enrolled installs what a stick brings."),
    # content fan-out: township mirrors (node side: edgenode/node/sources/, docs/fanout.md)
    Setting("mirror.enabled", bool, False, "Serve the pulled channels to the nodes the hub assigns (township mirror)."),
    Setting("mirror.rsync_url", str, "", "Where nodes reach this mirror's rsync daemon, e.g. rsync://10.1.2.3:8731."),
    Setting("mirror.http_url", str, "", "Where nodes reach this mirror over HTTP, e.g. http://10.1.2.3:8081/edgenode."),
    Setting("mirror.rsync_port", int, 8731, "Port of the mirror's rsync daemon.", check=_port),
    Setting("mirror.http_port", int, 8081, "Port of the mirror's nginx server block.", check=_port),
    Setting("mirror.windows", list, [], "When the mirror serves (sync.windows grammar, jobs ignored). Empty: always.",
            check=_windows),
    Setting("mirror.bwlimit_kbps", int, 0, "KiB/s cap per mirror connection (rsync, HTTP). 0: none.", check=_non_negative),
    Setting("mirror.max_connections", int, 10, "Most nodes the mirror serves at once.", check=_positive),
    Setting("mirror.refresh_minutes", int, 5, "How often the mirror rewrites its access lists.", check=_positive),
    Setting("swarm.listen_address", str, "0.0.0.0", "Address the BitTorrent swarm listens on (no DHT, county peers)."),
    Setting("swarm.listen_port", int, 6881, "Port the BitTorrent swarm listens on.", check=_port),
    Setting("swarm.advertise", str, "", "HOST:PORT other nodes reach this swarm at (in the heartbeat). Empty: unlisted."),
    Setting("swarm.download_kbps", int, 0, "KiB/s cap of swarm downloads. 0: none.", check=_non_negative),
    Setting("swarm.upload_kbps", int, 0, "KiB/s cap of swarm uploads. 0: none.", check=_non_negative),
    Setting("swarm.web_seed_after_seconds", float, 30.0, "Web seed only for pieces no node has, after this long "
            "without data from nodes (once more per node ahead in the hub's order).", check=_non_negative),
    Setting("swarm.min_bundle_mb", float, 0.0, "The pull fetches bundles at least this big by swarm, if the hub "
            "has a .torrent and lists peers. 0: never (rsync only).", check=_non_negative),
    Setting("swarm.seed_minutes", float, 30.0, "How long a node seeds a bundle it has.", check=_non_negative),
    Setting("usage.keep_days", int, 400,
            "Usage events older than this, once sealed for the hub, are folded into all-time totals and deleted "
            "by housekeeping. 0: keep every event.", check=_non_negative),
    # the TV (电视) mode (docs/portal.md, "TV mode")
    Setting("tv.clock_offset_seconds", int, 0,
            "Seconds added to the node's clock when the TV mode picks a screening: rehearsals and tests fake the "
            "time of day with it. 0 in service."),
    Setting("tv.poll_seconds", int, 30, "How often the TV's screening page asks whether the playlist changed.",
            check=_positive),
    # activities, campaigns, feedback (the villagers' side; docs/activities.md, docs/privacy.md)
    Setting("activities.retention_days", int, 30,
            "Names and phone numbers of bookings are deleted this many days after the activity ends.",
            check=_non_negative),
    Setting("activities.max_seats", int, 5, "Most seats one booking may take.", check=_positive),
    Setting("activities.terminal_daily_bookings", int, 5,
            "Most bookings one terminal may make in 24 hours (stops flooding).", check=_positive),
    Setting("activities.contacts_upstream", bool, False,
            "Send the name and phone number of bookings for the county's own activities to the hub. "
            "False: only counts go upstream."),
    Setting("campaigns.daily_votes", int, 2, "Per-terminal daily vote limit of a campaign that sets none.",
            check=_positive),
    Setting("feedback.terminal_daily_limit", int, 10, "Most requests and feedback one terminal may send per day.",
            check=_positive),
    # live broadcasts (node: edgenode/node/live/, hub: edgenode/hub/live.py; docs/live.md)
    Setting("live.origins", list, [], "URL prefixes a live stream and its poster may come from. Empty: the "
            "enrolled hub's address.", check=_str_list),
    Setting("live.check_seconds", int, 15, "How often the scheduler starts the relay or replay work.", check=_positive),
    Setting("live.lead_seconds", int, 60, "Poll the origin from this long before a start.", check=_non_negative),
    Setting("live.grace_seconds", int, 300, "Relay this long past a scheduled end.", check=_non_negative),
    Setting("live.no_stream_seconds", int, 120, "E_LIVE_NO_STREAM when nothing came this long after the start.",
            check=_positive),
    Setting("live.catchup_segments", int, 3, "After a gap, resume with this many newest segments.", check=_positive),
    Setting("live.max_segment_mb", int, 16, "Refuse a larger segment (E_LIVE_SEGMENT_TOO_BIG).", check=_positive),
    Setting("live.min_free_mb", int, 200, "Stop relaying below this free disk (E_DISK_FULL).", check=_non_negative),
    Setting("live.timeout_seconds", float, 5.0, "One playlist or segment request's time limit.", check=_positive),
    Setting("live.backfill_days", float, 7.0, "Then a replay is imported as it is, marked incomplete.",
            check=_positive),
    Setting("live.replay_channel", str, "live-replay", "The channel replays are imported into."),
    Setting("live.replay_column", str, "shequ", "The column replays are listed in.",
            choices=("sannong", "pushi", "xinchengshi", "shequ")),
    # contributions (采集/征集; edgenode/node/contrib/, edgenode/hub/contrib.py, docs/contrib.md)
    Setting("contrib.max_file_mb", int, 2048, "Largest file a villager may upload.", check=_positive),
    Setting("contrib.daily_mb", int, 8192, "Most megabytes the point accepts in uploads per day.", check=_positive),
    Setting("contrib.form_max_mb", int, 64, "Largest file through the plain no-JavaScript form.", check=_positive),
    Setting("contrib.expire_hours", float, 48.0, "An unfinished upload untouched this long is deleted.", check=_positive),
    Setting("contrib.max_pixels", int, 40_000_000, "Largest picture (width x height) accepted.", check=_positive),
    Setting("contrib.process_minutes", int, 5, "How often the scheduler processes finished uploads.", check=_positive),
    Setting("contrib.chunk_mb", int, 1, "Size of one upstream chunk to the hub (at most hub.max_batch_mb).",
            check=_positive),
    Setting("contrib.channel", str, "shequ", "The hub's channel for 本县群众作品 bundles (signed by the county key)."),
    # logging
    Setting("log.level", str, "INFO", "Log level.", choices=("DEBUG", "INFO", "WARNING", "ERROR")),
]
