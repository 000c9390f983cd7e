// The live player: the vendored hls.js (static/hls.min.js) where MSE exists, else the browser's own HLS;
// the relay's state (信号中断，正在重连) from /live/<key>/status; watching time as live_view beacons.
(function () {
  "use strict";
  var v = document.getElementById("live-video");
  if (!v) { return; }
  var d = v.dataset, status = document.getElementById("live-status");
  var watched = 0, last = null;

  function play() { var p = v.play(); if (p && p.catch) { p.catch(function () {}); } }

  function withHlsJs() {
    var s = document.createElement("script");
    s.src = d.hlsjs;
    s.onload = function () {
      if (!window.Hls || !window.Hls.isSupported()) { v.src = d.src; window.__livePlayer = "none"; return; }
      var hls = new window.Hls({ debug: !!window.__liveDebug, liveSyncDurationCount: 3, manifestLoadingMaxRetry: 1000,
                                 levelLoadingMaxRetry: 1000, fragLoadingMaxRetry: 1000 });
      window.__liveErrors = [];
      hls.on(window.Hls.Events.ERROR, function (e, data) {
        window.__liveErrors.push(data.details + (data.fatal ? " (fatal)" : ""));
        if (!data.fatal) { return; }
        if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) { hls.recoverMediaError(); }
        else { setTimeout(function () { hls.startLoad(); }, 2000); }
      });
      hls.loadSource(d.src);
      hls.attachMedia(v);
      hls.on(window.Hls.Events.MANIFEST_PARSED, play);
      window.__livePlayer = "hlsjs";
      window.__liveHls = hls;
    };
    document.head.appendChild(s);
  }

  // Where Media Source Extensions exist, hls.js plays: Chromium now answers canPlayType for HLS too,
  // but its native player stalled on a sliding live playlist here (docs/live.md).  Without MSE (an
  // iPhone's Safari) the browser's own HLS player does.
  var mse = window.MediaSource || window.ManagedMediaSource;
  if (mse && mse.isTypeSupported && mse.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')) {
    withHlsJs();
  } else {
    v.src = d.src; window.__livePlayer = "native"; play();
  }

  function poll() {
    fetch(d.status, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (s) {
      status.textContent = s.message_zh || "";
      if (s.phase === "replay" || s.phase === "ended") { status.textContent = "直播已结束"; }
    }).catch(function () { status.textContent = "信号中断，正在重连"; });
  }
  setInterval(poll, 3000);

  function beacon() {
    var now = v.currentTime;
    if (last !== null && !v.paused && now > last) { watched += Math.min(now - last, 2 * d.beaconSeconds); }
    last = now;
    if (watched >= 1) {
      var body = JSON.stringify({ key: d.key, seconds: Math.round(watched) });
      watched = 0;
      fetch(d.beacon, { method: "POST", headers: { "Content-Type": "application/json" }, body: body,
                        credentials: "same-origin", keepalive: true }).catch(function () {});
    }
  }
  setInterval(beacon, 1000 * d.beaconSeconds);
  window.addEventListener("pagehide", beacon);
})();
