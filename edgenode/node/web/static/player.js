/* Player beacons: play start, progress every N seconds, end.
   Plain ES5 for old reading-room browsers.  Failures are ignored on purpose:
   recording must never disturb playback (the server logs what it refuses). */
(function () {
  var el = document.getElementById('player');
  if (!el || !window.JSON || !el.addEventListener) { return; }
  var url = el.getAttribute('data-beacon');
  var rid = el.getAttribute('data-resource');
  var every = (parseInt(el.getAttribute('data-interval'), 10) || 15) * 1000;
  var started = false, watched = 0, lastT = null, timer = null;

  function send(kind, seconds, keepalive) {
    var body = JSON.stringify({events: [{kind: kind, resource: rid, seconds: seconds, position: el.currentTime || 0}]});
    try {
      if (window.fetch) {
        window.fetch(url, {method: 'POST', body: body, keepalive: !!keepalive, credentials: 'same-origin',
                           headers: {'Content-Type': 'application/json'}})['catch'](function () {});
      } else {
        var x = new XMLHttpRequest();
        x.open('POST', url, true);
        x.setRequestHeader('Content-Type', 'application/json');
        x.send(body);
      }
    } catch (e) { /* dropped silently */ }
  }
  function take() { var s = Math.round(watched * 10) / 10; watched = 0; return s; }
  function flush() { if (watched >= 0.5) { send('progress', take()); } }

  el.addEventListener('timeupdate', function () {
    var t = el.currentTime;
    // Count only real playback: a jump (seek) of 2 s or more between updates is not watching.
    if (lastT !== null && !el.paused && !el.seeking && t > lastT && t - lastT < 2) { watched += t - lastT; }
    lastT = t;
  });
  el.addEventListener('seeking', function () { lastT = null; });
  el.addEventListener('playing', function () {
    if (!started) { started = true; send('play_start', 0); }
    if (!timer) { timer = window.setInterval(flush, every); }
  });
  // A pause always reports where the terminal stopped, for 继续观看 (usage/resume.py).
  el.addEventListener('pause', function () { if (started && !el.ended) { send('progress', take()); } });
  var start = parseFloat(el.getAttribute('data-start')) || 0;
  el.addEventListener('loadedmetadata', function () {
    // Browsers without media fragments (#t=) start at 0: move to where this terminal stopped.
    if (start > 0 && el.currentTime < start - 1) { el.currentTime = start; }
  });
  el.addEventListener('ended', function () {
    send('play_end', take());
    upNext();
    started = false;
    if (timer) { window.clearInterval(timer); timer = null; }
  });
  // The next episode: offered at the end, played after a countdown unless the viewer stays.
  function upNext() {
    var box = document.getElementById('up-next'), link = document.getElementById('next-episode');
    if (!box || !link) { return; }
    var count = document.getElementById('up-next-count'), left = 5, stay = false;
    box.hidden = false;
    if (box.scrollIntoView) { box.scrollIntoView({block: 'nearest'}); }
    var stayBtn = document.getElementById('up-next-stay');
    if (stayBtn) { stayBtn.onclick = function () { stay = true; box.hidden = true; }; }
    var tick = window.setInterval(function () {
      if (stay) { window.clearInterval(tick); return; }
      left -= 1;
      if (count) { count.textContent = String(left); }
      if (left <= 0) { window.clearInterval(tick); window.location.href = link.getAttribute('data-autoplay'); }
    }, 1000);
  }
  window.addEventListener('pagehide', function () { if (started) { send('play_end', take(), true); started = false; } });
})();
