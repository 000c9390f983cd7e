/* The TV mode's keys: arrows move between tiles, Enter opens one (links do that themselves);
   while playing, Escape/Backspace go back to the tiles, Enter pauses, left/right seek 10 s.
   The screening page plays its playlist in a loop and switches when /tv/api/now says so, to the
   live relay while a broadcast is on. */
(function () {
  var body = document.body;
  var DIRS = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};

  function centre(el) { var r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }
  function move(key) {
    var tiles = Array.prototype.slice.call(document.querySelectorAll('.tile'));
    var cur = document.activeElement && document.activeElement.classList.contains('tile') ? document.activeElement : null;
    if (!cur) { if (tiles[0]) { tiles[0].focus(); } return; }
    var c = centre(cur), d = DIRS[key], best = null, bestScore = Infinity;
    tiles.forEach(function (t) {
      if (t === cur) { return; }
      var p = centre(t), dx = p[0] - c[0], dy = p[1] - c[1];
      var along = dx * d[0] + dy * d[1], across = Math.abs(dx * d[1]) + Math.abs(dy * d[0]);
      if (along <= 1) { return; }
      var score = along + 2 * across;
      if (score < bestScore) { bestScore = score; best = t; }
    });
    if (best) { best.focus(); best.scrollIntoView({block: 'nearest'}); }
  }
  function back() { window.location.href = body.getAttribute('data-back') || '/tv/'; }

  function quietCaption() {
    var cap = document.getElementById('caption');
    if (!cap) { return; }
    cap.classList.remove('quiet');
    window.clearTimeout(quietCaption.t);
    quietCaption.t = window.setTimeout(function () { cap.classList.add('quiet'); }, 5000);
  }

  document.addEventListener('keydown', function (e) {
    var k = e.key;
    if (body.classList.contains('tv-tiles')) {
      if (DIRS[k]) { e.preventDefault(); move(k); }
      return;
    }
    var v = document.querySelector('video, audio');
    quietCaption();
    if (k === 'Escape' || k === 'Backspace' || k === 'BrowserBack' || k === 'GoBack') { e.preventDefault(); back(); }
    else if (v && (k === 'Enter' || k === ' ')) { e.preventDefault(); if (v.paused) { v.play(); } else { v.pause(); } }
    else if (v && (k === 'ArrowLeft' || k === 'ArrowRight')) {
      e.preventDefault();
      v.currentTime = Math.max(0, v.currentTime + (k === 'ArrowLeft' ? -10 : 10));
    }
  });

  if (body.classList.contains('tv-tiles')) {
    var first = document.querySelector('.tile');
    if (first && document.activeElement === document.body) { first.focus(); }
  }
  if (body.classList.contains('tv-play')) {
    var player = document.getElementById('player');
    quietCaption();
    player.addEventListener('ended', function () {
      var next = body.getAttribute('data-next');
      if (next) { window.location.href = next; } else { back(); }
    });
  }
  if (body.classList.contains('tv-screen')) { screen(); }
  if (body.classList.contains('tv-live')) { live(); }

  // While a broadcast is on, the screen shows it; when it ends, the screening comes back.
  function live() {
    window.setInterval(function () {
      window.fetch(body.getAttribute('data-api'), {credentials: 'same-origin'}).then(function (r) { return r.json(); })
        .then(function (now) {
          if (!now.live || now.live.key !== body.getAttribute('data-live')) {
            window.location.href = body.getAttribute('data-screen');
          }
        })['catch'](function () {});
    }, (parseInt(body.getAttribute('data-poll'), 10) || 30) * 1000);
  }

  function screen() {
    var video = document.getElementById('screen');
    var state = JSON.parse(body.getAttribute('data-now')), idx = 0;
    var tracksOn = body.getAttribute('data-tracks-on') === '1';
    function play(i) {
      var items = state.items;
      body.setAttribute('data-playlist', state.playlist);
      document.getElementById('playlist-title').textContent = state.title;
      if (!items.length) { document.getElementById('item-title').textContent = '暂无节目'; return; }
      idx = i % items.length;
      var item = items[idx];
      while (video.firstChild) { video.removeChild(video.firstChild); }
      item.tracks.forEach(function (t, n) {
        var tr = document.createElement('track');
        tr.kind = 'subtitles'; tr.src = t.src; tr.srclang = t.lang; tr.label = t.label;
        if (tracksOn && n === 0) { tr['default'] = true; }
        video.appendChild(tr);
      });
      video.src = item.src;
      body.setAttribute('data-item', item.id);
      document.getElementById('item-title').textContent = item.title;
      quietCaption();
      var p = video.play();
      if (p && p['catch']) { p['catch'](function () {}); }
    }
    video.addEventListener('ended', function () { play(idx + 1); });
    video.addEventListener('error', function () { window.setTimeout(function () { play(idx + 1); }, 2000); });
    function poll() {
      window.fetch(body.getAttribute('data-api'), {credentials: 'same-origin'}).then(function (r) { return r.json(); })
        .then(function (now) {
          if (now.live) { window.location.href = now.live.url; return; }
          if (now.playlist !== state.playlist) { state = now; play(0); } else { state = now; }
        })['catch'](function () {});
    }
    window.setInterval(poll, (parseInt(body.getAttribute('data-poll'), 10) || 30) * 1000);
    play(0);
  }
})();
