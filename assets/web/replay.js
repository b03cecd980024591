/* haptwin session replay viewer (served as /static/replay.js).
 *
 * Plain JavaScript, no libraries, no build step, no inline script: it runs under the
 * dashboard's Content-Security-Policy (script-src 'self'). It expects the markup the server
 * writes on a session page:
 *
 *   <section id="replay" data-src="/api/sessions/42/replay">  canvas#replay-canvas,
 *   button#replay-play, input[type=range]#replay-time (0..1000), select#replay-speed,
 *   span#replay-clock, p#replay-status
 *
 * and draws the replay JSON that src/store/ingest.rs::score_with_frames produces (version 1:
 * integer positions in units of `unit_m`, the tool path at `tool_rate_hz`, tissue frames as
 * displacements from the rest positions, the surface triangles per cut).
 *
 * State published on the section element, for automated browser tests:
 *   data-state      loading | ready | playing | paused | ended | error
 *   data-time       the time shown, in seconds, 3 decimals ("2.500")
 *   data-frame      index of the tissue frame shown (the one at or before the time)
 *   data-triangles  triangles drawn on the last draw (front faces after culling)
 * On an error #replay-status holds the message and data-state is "error".
 *
 * Test hooks, read from the page URL's query string (location.search):
 *   ?autoplay=1     start playing as soon as the replay is loaded
 *   ?t=SECONDS      start at this time (paused, unless autoplay=1 too)
 *   ?speed=X        start at this speed (0.5, 1, 2 or 4: one of the select's options)
 *
 * Keyboard: space plays / pauses when the canvas or the section has focus; the left and right
 * arrows step 1 s back or forward when the canvas has focus.
 */
(function () {
  'use strict';

  // Bits of src/bus.rs tick_flags that the replay's events carry.
  var EVENT_KINDS = [
    { bit: 1 << 14, name: 'Cut', color: '#a8322d' },
    { bit: 1 << 17, name: 'Puncture', color: '#d9822b' },
    { bit: 1 << 15, name: 'Grasp', color: '#2f6db5' },
    { bit: 1 << 18, name: 'Mark', color: '#16877f' },
    { bit: 1 << 19, name: 'No-go contact', color: '#8e3fa6' }
  ];
  var SHADES = 48; // Lambert shade levels in the tissue palette
  var PRESS = 4; // deformation tint levels in the tissue palette
  var PRESS_FULL_UNITS = 40; // push from the settled state at the deepest tint: 4 mm in 0.1 mm units
  var SORT_SHIFT = 2097152; // 2^21: triangle index bits in a packed depth key
  var MAX_TRIANGLES = SORT_SHIFT;
  var EMPTY = [];
  var FONT = '12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  var FONT_BOLD = '600 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

  function start() {
    var section = document.getElementById('replay');
    var canvas = document.getElementById('replay-canvas');
    if (!section || !canvas || !canvas.getContext) {
      return; // not a page with a replay
    }
    new Viewer(section, canvas).load();
  }

  // ---------------------------------------------------------------------------------------
  // Reading and checking the replay JSON.

  function DataError(message) {
    this.message = message;
  }

  function fail(message) {
    throw new DataError(message);
  }

  function num(obj, key, min) {
    var v = obj[key];
    if (typeof v !== 'number' || !isFinite(v)) {
      fail(v === undefined || v === null ? '"' + key + '" is missing' : '"' + key + '" is not a number');
    }
    if (min !== undefined && !(v >= min)) {
      fail('"' + key + '" is out of range (' + v + ')');
    }
    return v;
  }

  function arr(obj, key) {
    var v = obj[key];
    if (!Array.isArray(v)) {
      fail(v === undefined || v === null ? '"' + key + '" is missing' : '"' + key + '" is not a list');
    }
    return v;
  }

  function finite(v) {
    return typeof v === 'number' && isFinite(v);
  }

  function point(v) {
    return Array.isArray(v) && v.length === 3 && finite(v[0]) && finite(v[1]) && finite(v[2]);
  }

  /** Checks the JSON and converts it into typed arrays; throws DataError. */
  function parseReplay(j) {
    if (j === null || typeof j !== 'object' || Array.isArray(j)) {
      fail('it is not a JSON object');
    }
    if (j.version !== 1) {
      fail(j.version === undefined ? '"version" is missing' : 'version ' + JSON.stringify(j.version) + ' is not one this viewer reads (1)');
    }
    var d = {};
    d.unit = num(j, 'unit_m');
    if (!(d.unit > 0)) fail('"unit_m" is out of range (' + d.unit + ')');
    d.duration = num(j, 'duration_s', 0);
    d.toolRate = num(j, 'tool_rate_hz');
    if (!(d.toolRate > 0)) fail('"tool_rate_hz" is out of range (' + d.toolRate + ')');
    d.toolRadius = num(j, 'tool_radius_m', 0) / d.unit; // in units
    d.safeForce = num(j, 'safe_force_n', 0);

    // Rest positions.
    var rest = arr(j, 'rest');
    if (rest.length === 0 || rest.length % 3 !== 0) fail('"rest" must hold x, y, z per particle');
    var n = rest.length / 3;
    d.n = n;
    d.rest = new Float32Array(rest.length);
    for (var i = 0; i < rest.length; i++) {
      if (!finite(rest[i])) fail('"rest" holds a value that is not a number');
      d.rest[i] = rest[i];
    }

    // Tool path: [x, y, z, force_n] per sample.
    var tool = arr(j, 'tool');
    d.toolN = tool.length;
    d.tool = new Float32Array(tool.length * 4);
    var maxForce = 0;
    for (i = 0; i < tool.length; i++) {
      var s = tool[i];
      if (!Array.isArray(s) || s.length < 4 || !finite(s[0]) || !finite(s[1]) || !finite(s[2]) || !finite(s[3])) {
        fail('tool sample ' + i + ' is not [x, y, z, force]');
      }
      d.tool[4 * i] = s[0];
      d.tool[4 * i + 1] = s[1];
      d.tool[4 * i + 2] = s[2];
      d.tool[4 * i + 3] = s[3];
      if (s[3] > maxForce) maxForce = s[3];
    }
    d.maxForce = maxForce;

    // Surfaces, in the order of their first frame.
    var surfaces = arr(j, 'surfaces');
    if (surfaces.length === 0) fail('"surfaces" is empty');
    d.surfaces = [];
    d.maxTris = 0;
    for (i = 0; i < surfaces.length; i++) {
      var sf = surfaces[i];
      if (sf === null || typeof sf !== 'object') fail('surface ' + i + ' is not an object');
      var from = sf.from_frame;
      if (!finite(from) || from < 0) fail('surface ' + i + ': "from_frame" is missing');
      var tris = sf.triangles;
      if (!Array.isArray(tris) || tris.length % 3 !== 0) fail('surface ' + i + ': "triangles" must hold i, j, k per triangle');
      if (tris.length / 3 > MAX_TRIANGLES) fail('surface ' + i + ' has too many triangles');
      var t32 = new Uint32Array(tris.length);
      for (var k = 0; k < tris.length; k++) {
        var q = tris[k];
        if (!(q >= 0 && q < n && q === Math.floor(q))) {
          fail('surface ' + i + ' names particle ' + q + ', but there are ' + n);
        }
        t32[k] = q;
      }
      d.surfaces.push({ from: from, tris: t32 });
      if (t32.length / 3 > d.maxTris) d.maxTris = t32.length / 3;
    }
    d.surfaces.sort(function (a, b) { return a.from - b.from; });

    // Tissue frames: displacement of every particle from rest.
    var frames = arr(j, 'frames');
    if (frames.length === 0) fail('"frames" is empty');
    var nf = frames.length;
    var n3 = rest.length;
    d.frameT = new Float64Array(nf);
    var big = false;
    for (i = 0; i < nf; i++) {
      var f = frames[i];
      if (f === null || typeof f !== 'object') fail('frame ' + i + ' is not an object');
      if (!finite(f.t)) fail('frame ' + i + ': "t" is missing');
      if (!Array.isArray(f.d) || f.d.length !== n3) {
        fail('frame ' + i + ': "d" must hold ' + n3 + ' displacements' + (Array.isArray(f.d) ? ', it holds ' + f.d.length : ''));
      }
      d.frameT[i] = f.t;
      if (i > 0 && f.t < d.frameT[i - 1]) fail('frame ' + i + ' is earlier than frame ' + (i - 1));
    }
    // One buffer for all frames; 16 bits a value while every displacement fits (+-3.2 m).
    for (i = 0; i < nf && !big; i++) {
      var dd = frames[i].d;
      for (k = 0; k < n3; k++) {
        var v = dd[k];
        if (!finite(v)) fail('frame ' + i + ' holds a displacement that is not a number');
        if (v > 32767 || v < -32768) { big = true; break; }
      }
    }
    d.disp = big ? new Float32Array(nf * n3) : new Int16Array(nf * n3);
    for (i = 0; i < nf; i++) {
      dd = frames[i].d;
      var base = i * n3;
      for (k = 0; k < n3; k++) {
        if (!finite(dd[k])) fail('frame ' + i + ' holds a displacement that is not a number');
        d.disp[base + k] = dd[k];
      }
    }
    d.frameN = nf;
    // Each particle's settled displacement: the median over the frames (the tint shows how far
    // the tissue is pushed from it, not how much it sagged once at the start).
    d.base = new Float32Array(n3);
    var col = new Float32Array(nf);
    for (k = 0; k < n3; k++) {
      for (i = 0; i < nf; i++) col[i] = d.disp[i * n3 + k];
      col.sort();
      d.base[k] = nf % 2 ? col[(nf - 1) >> 1] : (col[nf / 2 - 1] + col[nf / 2]) / 2;
    }

    // Events: [t_s, flags], merged into spans per kind (a contact lasts many ticks).
    d.spans = [];
    var events = j.events === undefined || j.events === null ? [] : j.events;
    if (!Array.isArray(events)) fail('"events" is not a list');
    var open = [];
    for (i = 0; i < events.length; i++) {
      var e = events[i];
      if (!Array.isArray(e) || !finite(e[0]) || !finite(e[1])) fail('event ' + i + ' is not [t, flags]');
      for (k = 0; k < EVENT_KINDS.length; k++) {
        if (!(e[1] & EVENT_KINDS[k].bit)) continue;
        var o = open[k];
        if (o && e[0] - o.end <= 0.05) {
          o.end = e[0];
        } else {
          o = { start: e[0], end: e[0], kind: EVENT_KINDS[k] };
          open[k] = o;
          d.spans.push(o);
        }
      }
    }
    d.spans.sort(function (a, b) { return a.start - b.start; });

    // Landmarks (optional; a malformed entry is left out) and the tumour centre.
    d.marks = [];
    var hasTumour = false;
    var lms = j.landmarks === undefined || j.landmarks === null ? [] : j.landmarks;
    if (!Array.isArray(lms)) fail('"landmarks" is not a list');
    for (i = 0; i < lms.length; i++) {
      var lm = lms[i];
      if (!lm || typeof lm.what !== 'string' || !point(lm.pos)) continue;
      var tumour = /tumou?r/i.test(lm.what);
      hasTumour = hasTumour || tumour;
      d.marks.push({ what: lm.what, pos: lm.pos, color: tumour ? '#7b3fa0' : /target/i.test(lm.what) ? '#c07a12' : '#1f6fb2' });
    }
    if (point(j.tumour_centre) && !hasTumour) {
      d.marks.push({ what: 'tumour centre', pos: j.tumour_centre, color: '#7b3fa0' });
    }
    return d;
  }

  // ---------------------------------------------------------------------------------------
  // The viewer.

  function Viewer(section, canvas) {
    this.section = section;
    this.canvas = canvas;
    this.ctx = null;
    this.play = document.getElementById('replay-play');
    this.range = document.getElementById('replay-time');
    this.speedSel = document.getElementById('replay-speed');
    this.clock = document.getElementById('replay-clock');
    this.status = document.getElementById('replay-status');
    this.data = null;
    this.state = '';
    this.t = 0;
    this.speed = 1;
    this.lastTs = -1;
    this.raf = 0;
    this.scrubbing = false;
    this.cssW = 0;
    this.cssH = 0;
    this.dpr = 0;
    this.params = readParams();
    this.onFrame = this.frame.bind(this);
  }

  function readParams() {
    var p = { autoplay: false, t: null, speed: null };
    var q = (typeof location !== 'undefined' && location.search) || '';
    if (q.charAt(0) === '?') q = q.slice(1);
    var dec = function (x) {
      try {
        return decodeURIComponent(x.replace(/\+/g, ' '));
      } catch (e) {
        return null; // a malformed escape
      }
    };
    q.split('&').forEach(function (kv) {
      var i = kv.indexOf('=');
      var k = dec(i < 0 ? kv : kv.slice(0, i));
      var v = i < 0 ? '' : dec(kv.slice(i + 1));
      if (k === null || v === null) return; // ignored
      if (k === 'autoplay') p.autoplay = v === '' || v === '1' || v === 'true';
      if (k === 't' && isFinite(parseFloat(v))) p.t = parseFloat(v);
      if (k === 'speed' && parseFloat(v) > 0) p.speed = parseFloat(v);
    });
    return p;
  }

  Viewer.prototype.setState = function (s) {
    if (this.state !== s) {
      this.state = s;
      this.section.setAttribute('data-state', s);
    }
    if (this.play) {
      this.play.textContent = s === 'playing' ? 'Pause' : 'Play';
    }
  };

  Viewer.prototype.setStatus = function (text) {
    if (this.status) this.status.textContent = text;
  };

  Viewer.prototype.enableControls = function (on) {
    var els = [this.play, this.range, this.speedSel];
    for (var i = 0; i < els.length; i++) {
      if (els[i]) els[i].disabled = !on;
    }
  };

  Viewer.prototype.error = function (message) {
    this.stopLoop();
    this.setState('error');
    this.enableControls(false);
    this.setStatus(message);
    this.section.setAttribute('data-triangles', '0');
    if (this.ctx) {
      try {
        this.drawMessage(message);
      } catch (e) { /* the status line has it */ }
    }
  };

  Viewer.prototype.load = function () {
    var self = this;
    this.setState('loading');
    this.section.setAttribute('data-time', '0.000');
    this.section.setAttribute('data-frame', '0');
    this.section.setAttribute('data-triangles', '0');
    this.enableControls(false);
    this.setStatus('Loading the replay\u2026');
    try {
      this.setupCanvas();
    } catch (e) {
      this.error('The replay cannot be drawn: ' + (e && e.message ? e.message : 'no canvas'));
      return;
    }
    var src = this.section.getAttribute('data-src');
    if (!src) {
      this.error('The replay cannot be loaded: the page names no replay (data-src).');
      return;
    }
    if (typeof fetch !== 'function') {
      this.error('The replay cannot be loaded: this browser is too old (no fetch).');
      return;
    }
    this.drawMessage('Loading the replay\u2026');
    fetch(src, { credentials: 'same-origin' }).then(function (res) {
      if (!res.ok) {
        var why = res.status === 404 ? ' (no replay is stored for this session)' : '';
        throw new DataError('The replay could not be loaded: HTTP ' + res.status +
          (res.statusText ? ' ' + res.statusText : '') + why + '.');
      }
      return res.text();
    }, function () {
      throw new DataError('The replay could not be loaded: the server did not answer (network error).');
    }).then(function (text) {
      var json;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new DataError('The replay data is not valid JSON' + (e && e.message ? ' (' + e.message + ')' : '') + '.');
      }
      var d;
      try {
        d = parseReplay(json);
      } catch (e) {
        if (e instanceof DataError) throw new DataError('The replay data is not usable: ' + e.message + '.');
        throw e;
      }
      self.ready(d);
    }).catch(function (e) {
      self.error(e instanceof DataError ? e.message : 'The replay could not be shown: ' + (e && e.message ? e.message : String(e)));
    });
  };

  Viewer.prototype.setupCanvas = function () {
    var canvas = this.canvas;
    var ctx = canvas.getContext('2d', { alpha: false });
    if (!ctx) throw new Error('this browser has no 2D canvas');
    this.ctx = ctx;
    // The markup's width and height are the canvas's largest CSS size and its aspect ratio;
    // the backing store follows the CSS size times devicePixelRatio.
    var w0 = canvas.width || 760;
    var h0 = canvas.height || 420;
    this.w0 = w0;
    this.h0 = h0;
    canvas.style.width = '100%';
    canvas.style.maxWidth = w0 + 'px';
    canvas.style.height = 'auto';
    canvas.style.aspectRatio = w0 + ' / ' + h0;
    if (!canvas.hasAttribute('tabindex')) canvas.setAttribute('tabindex', '0');
    this.measure();

    var self = this;
    var onResize = function () {
      if (self.measure()) {
        if (self.data) self.fit();
        self.redraw();
      }
    };
    if (typeof ResizeObserver === 'function') {
      new ResizeObserver(onResize).observe(canvas);
    }
    window.addEventListener('resize', onResize);
    this.onResize = onResize;
  };

  /** Sizes the backing store to the CSS size and devicePixelRatio; true when it changed. */
  Viewer.prototype.measure = function () {
    var canvas = this.canvas;
    // The content box: the border box less the border (a stylesheet may give it one).
    var rect = canvas.getBoundingClientRect();
    var cssW = rect.width - (canvas.offsetWidth - canvas.clientWidth);
    var cssH = rect.height - (canvas.offsetHeight - canvas.clientHeight);
    if (!(cssW > 0) || !(cssH > 0)) {
      cssW = this.w0;
      cssH = this.h0;
    }
    var dpr = window.devicePixelRatio > 0 ? Math.min(window.devicePixelRatio, 4) : 1;
    if (cssW === this.cssW && cssH === this.cssH && dpr === this.dpr) return false;
    this.cssW = cssW;
    this.cssH = cssH;
    this.dpr = dpr;
    canvas.width = Math.max(1, Math.round(cssW * dpr));
    canvas.height = Math.max(1, Math.round(cssH * dpr));
    this.bg = null;
    return true;
  };

  Viewer.prototype.ready = function (d) {
    this.data = d;
    var n = d.n;
    // Per-particle work arrays, reused every draw.
    this.pos = new Float32Array(3 * n); // deformed position (units)
    this.sx = new Float32Array(n); // screen x (CSS px)
    this.sy = new Float32Array(n);
    this.sz = new Float32Array(n); // depth along the view direction
    this.dmag = new Float32Array(n); // distance from the settled position (units)
    this.keys = new Float64Array(d.maxTris);
    this.triShade = new Uint16Array(d.maxTris); // palette index per triangle
    this.visible = new Uint32Array(d.maxTris); // front-facing triangles of this draw
    this.camera();
    this.palette();
    this.fit();
    this.bindControls();

    var p = this.params;
    if (p.speed) this.setSpeed(p.speed, true);
    else if (this.speedSel) this.setSpeed(parseFloat(this.speedSel.value) || 1, false);
    this.t = p.t !== null ? clamp(p.t, 0, d.duration) : 0;
    this.enableControls(true);
    this.setStatus('');
    this.setState('ready');
    this.redraw();
    if (p.autoplay) this.startPlaying();
  };

  function clamp(v, lo, hi) {
    return v < lo ? lo : v > hi ? hi : v;
  }

  /** A fixed oblique camera: above and in front of the tissue, a little to its right. */
  Viewer.prototype.camera = function () {
    var d = this.data;
    var r = d.rest;
    var min = [Infinity, Infinity, Infinity];
    var max = [-Infinity, -Infinity, -Infinity];
    for (var i = 0; i < r.length; i += 3) {
      for (var k = 0; k < 3; k++) {
        var v = r[i + k];
        if (v < min[k]) min[k] = v;
        if (v > max[k]) max[k] = v;
      }
    }
    this.min = min;
    this.max = max;
    var size = Math.max(max[0] - min[0], max[1] - min[1], max[2] - min[2], 1);
    this.size = size;
    var c = [(min[0] + max[0]) / 2, (min[1] + max[1]) / 2, (min[2] + max[2]) / 2];
    var az = 32 * Math.PI / 180;
    var el = 38 * Math.PI / 180;
    var back = [Math.sin(az) * Math.cos(el), Math.sin(el), Math.cos(az) * Math.cos(el)];
    var dist = 3.2 * size;
    this.eye = [c[0] + back[0] * dist, c[1] + back[1] * dist, c[2] + back[2] * dist];
    var fwd = [-back[0], -back[1], -back[2]];
    var right = norm(cross(fwd, [0, 1, 0]));
    this.fwd = fwd;
    this.right = right;
    this.up = cross(right, fwd);
    // Key light from the upper left front, in the world frame.
    this.light = norm([-0.45, 0.85, 0.5]);
    // The particles on the top surface (for the tool's shadow and depth read-out).
    var top = [];
    var tol = Math.max(2, 0.03 * size);
    for (i = 0; i < d.n; i++) {
      if (r[3 * i + 1] >= max[1] - tol) top.push(i);
    }
    this.top = new Uint32Array(top);
    // Landmark labels; one under the surface says how deep.
    for (i = 0; i < d.marks.length; i++) {
      var m = d.marks[i];
      var deep = (max[1] - m.pos[1]) * d.unit * 1000;
      m.deep = deep >= 1;
      m.label = m.deep ? m.what + ' \u00b7 ' + deep.toFixed(0) + ' mm deep' : m.what;
    }
  };

  function cross(a, b) {
    return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  }

  function norm(a) {
    var l = Math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]) || 1;
    return [a[0] / l, a[1] / l, a[2] / l];
  }

  /** Screen scale and offset that fit the rest positions and the tool's path near them. */
  Viewer.prototype.fit = function () {
    var d = this.data;
    var min = this.min;
    var max = this.max;
    var size = this.size;
    var lo = [Infinity, Infinity];
    var hi = [-Infinity, -Infinity];
    var out = [0, 0, 0];
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    var self = this;
    var take = function (x, y, z) {
      self.project(x, y, z, out);
      if (out[0] < lo[0]) lo[0] = out[0];
      if (out[0] > hi[0]) hi[0] = out[0];
      if (out[1] < lo[1]) lo[1] = out[1];
      if (out[1] > hi[1]) hi[1] = out[1];
    };
    var r = d.rest;
    for (var i = 0; i < r.length; i += 3) take(r[i], r[i + 1], r[i + 2]);
    // The tool where it works (its far approach may leave the view), and the landmarks.
    var m = 0.15 * size;
    var rad = d.toolRadius;
    for (i = 0; i < d.toolN; i++) {
      take(clamp(d.tool[4 * i], min[0] - m, max[0] + m), clamp(d.tool[4 * i + 1] + rad, min[1], max[1] + 2 * m),
        clamp(d.tool[4 * i + 2], min[2] - m, max[2] + m));
    }
    for (i = 0; i < d.marks.length; i++) take(d.marks[i].pos[0], d.marks[i].pos[1], d.marks[i].pos[2]);
    var W = this.cssW;
    var H = this.cssH;
    var padX = 28;
    var padTop = 62; // the read-out
    var padBottom = 48; // the legend and the event strip
    var s = Math.min((W - 2 * padX) / Math.max(hi[0] - lo[0], 1e-9), (H - padTop - padBottom) / Math.max(hi[1] - lo[1], 1e-9));
    this.scale = s;
    this.ox = (W - s * (hi[0] + lo[0])) / 2;
    this.oy = padTop + (H - padTop - padBottom - s * (hi[1] - lo[1])) / 2 - s * lo[1];

    // The tool path on screen (the camera is fixed).
    this.trail = new Float32Array(2 * d.toolN);
    for (i = 0; i < d.toolN; i++) {
      this.project(d.tool[4 * i], d.tool[4 * i + 1], d.tool[4 * i + 2], out);
      this.trail[2 * i] = out[0];
      this.trail[2 * i + 1] = out[1];
    }
    // Landmarks on screen, each label where it overlaps no other (right, left, above, below).
    var ctx = this.ctx;
    ctx.font = FONT;
    var placed = [];
    for (i = 0; i < d.marks.length; i++) {
      var mk = d.marks[i];
      this.project(mk.pos[0], mk.pos[1], mk.pos[2], out);
      mk.x = out[0];
      mk.y = out[1];
      var w = ctx.measureText(mk.label).width + 6;
      var spots = [[9, -19], [9, 3], [-9 - w, -19], [-9 - w, 3], [-w / 2, -30], [-w / 2, 10]];
      var best = null;
      var bestHits = Infinity;
      for (var sIdx = 0; sIdx < spots.length && bestHits > 0; sIdx++) {
        var rx = mk.x + spots[sIdx][0];
        var ry = mk.y + spots[sIdx][1];
        var hits = 0;
        for (var pj = 0; pj < placed.length; pj++) {
          var o = placed[pj];
          if (rx < o[0] + o[2] && o[0] < rx + w && ry < o[1] + 16 && o[1] < ry + 16) hits++;
        }
        if (rx < 0 || rx + w > this.cssW) hits += 0.5;
        if (hits < bestHits) {
          bestHits = hits;
          best = [rx, ry, w];
        }
      }
      placed.push(best);
      mk.box = best;
    }
    this.bg = null;
  };

  /** Projects a world point (units) to CSS pixels: out = [x, y, depth]. */
  Viewer.prototype.project = function (x, y, z, out) {
    var e = this.eye;
    var rx = x - e[0];
    var ry = y - e[1];
    var rz = z - e[2];
    var R = this.right;
    var U = this.up;
    var F = this.fwd;
    var depth = rx * F[0] + ry * F[1] + rz * F[2];
    var inv = 1 / Math.max(depth, 1e-6);
    out[0] = this.ox + this.scale * (rx * R[0] + ry * R[1] + rz * R[2]) * inv;
    out[1] = this.oy - this.scale * (rx * U[0] + ry * U[1] + rz * U[2]) * inv;
    out[2] = depth;
    return out;
  };

  /** Tissue colours: SHADES Lambert levels x PRESS deformation tints, as CSS strings. */
  Viewer.prototype.palette = function () {
    var base = [238, 184, 164]; // soft flesh
    var pressed = [214, 118, 112]; // where the tissue is pushed in
    var p = [];
    for (var k = 0; k < PRESS; k++) {
      var a = k / (PRESS - 1) * 0.75;
      for (var s = 0; s < SHADES; s++) {
        var lum = 0.34 + 0.74 * (s / (SHADES - 1));
        var rgb = [0, 1, 2].map(function (c) {
          var v = (base[c] * (1 - a) + pressed[c] * a) * lum;
          return Math.max(0, Math.min(255, Math.round(v)));
        });
        p.push('rgb(' + rgb[0] + ',' + rgb[1] + ',' + rgb[2] + ')');
      }
    }
    this.colors = p;
  };

  Viewer.prototype.bindControls = function () {
    var self = this;
    if (this.play) {
      this.play.addEventListener('click', function () { self.toggle(); });
    }
    if (this.range) {
      // While the thumb is dragged the playback does not move it.
      this.range.addEventListener('pointerdown', function () { self.scrubbing = true; });
      var endScrub = function () { self.scrubbing = false; };
      window.addEventListener('pointerup', endScrub);
      window.addEventListener('pointercancel', endScrub);
      this.range.addEventListener('input', function () {
        var max = parseFloat(self.range.max) || 1000;
        self.seek((parseFloat(self.range.value) || 0) / max * self.data.duration);
      });
    }
    if (this.speedSel) {
      this.speedSel.addEventListener('change', function () {
        self.setSpeed(parseFloat(self.speedSel.value), false);
      });
    }
    this.section.addEventListener('keydown', function (ev) {
      var target = ev.target;
      if (target !== self.canvas && target !== self.section) return;
      if (ev.key === ' ' || ev.key === 'Spacebar' || ev.code === 'Space') {
        ev.preventDefault();
        self.toggle();
      } else if (target === self.canvas && (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight')) {
        ev.preventDefault();
        self.seek(self.t + (ev.key === 'ArrowLeft' ? -1 : 1));
      }
    });
    // A pointer press on the canvas gives it focus, so space works after a click.
    this.canvas.addEventListener('pointerdown', function () {
      if (document.activeElement !== self.canvas) self.canvas.focus({ preventScroll: true });
    });
  };

  Viewer.prototype.setSpeed = function (v, toSelect) {
    if (!(v > 0) || !isFinite(v)) return;
    this.speed = v;
    if (toSelect && this.speedSel) {
      for (var i = 0; i < this.speedSel.options.length; i++) {
        if (parseFloat(this.speedSel.options[i].value) === v) this.speedSel.selectedIndex = i;
      }
    }
  };

  Viewer.prototype.toggle = function () {
    if (!this.data || this.state === 'error') return;
    if (this.state === 'playing') {
      this.stopLoop();
      this.setState('paused');
      this.redraw();
    } else {
      this.startPlaying();
    }
  };

  Viewer.prototype.startPlaying = function () {
    if (this.state === 'ended' || this.t >= this.data.duration) this.t = 0;
    this.setState('playing');
    this.lastTs = -1;
    this.redraw();
    if (!this.raf) this.raf = requestAnimationFrame(this.onFrame);
  };

  Viewer.prototype.stopLoop = function () {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
    this.lastTs = -1;
  };

  Viewer.prototype.frame = function (ts) {
    this.raf = 0;
    if (this.state !== 'playing') return;
    if (this.lastTs >= 0) {
      // A hidden tab gets no frames: do not jump over what it missed.
      var dt = Math.min(Math.max(ts - this.lastTs, 0), 250) / 1000;
      this.t += dt * this.speed;
    }
    this.lastTs = ts;
    if (this.t >= this.data.duration) {
      this.t = this.data.duration;
      this.setState('ended');
      this.redraw();
      return;
    }
    this.redraw();
    this.raf = requestAnimationFrame(this.onFrame);
  };

  Viewer.prototype.seek = function (t) {
    if (!this.data) return;
    this.t = clamp(t, 0, this.data.duration);
    if (this.state === 'ended' && this.t < this.data.duration) this.setState('paused');
    if (this.state === 'ready' && this.t > 0) this.setState('paused');
    this.redraw();
  };

  Viewer.prototype.redraw = function () {
    if (!this.data || !this.ctx) return;
    try {
      this.draw();
    } catch (e) {
      this.error('The replay could not be drawn: ' + (e && e.message ? e.message : String(e)));
      return;
    }
    var d = this.data;
    var t = this.t;
    this.section.setAttribute('data-time', t.toFixed(3));
    if (this.clock) this.clock.textContent = t.toFixed(1) + ' s / ' + d.duration.toFixed(1) + ' s';
    if (this.range && !this.scrubbing) {
      var max = parseFloat(this.range.max) || 1000;
      this.range.value = String(d.duration > 0 ? Math.round(t / d.duration * max) : 0);
    }
  };

  /** Index of the last tissue frame at or before t (0 when t is before the first). */
  Viewer.prototype.frameAt = function (t) {
    var T = this.data.frameT;
    var lo = 0;
    var hi = T.length - 1;
    if (t <= T[0]) return 0;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (T[mid] <= t) lo = mid; else hi = mid - 1;
    }
    return lo;
  };

  Viewer.prototype.surfaceAt = function (frame) {
    var s = this.data.surfaces;
    var pick = s[0];
    for (var i = 1; i < s.length; i++) {
      if (s[i].from <= frame) pick = s[i]; else break;
    }
    return pick;
  };

  // ---------------------------------------------------------------------------------------
  // Drawing.

  Viewer.prototype.background = function (ctx) {
    if (!this.bg) {
      var g = ctx.createLinearGradient(0, 0, 0, this.cssH);
      g.addColorStop(0, '#f3f5f7');
      g.addColorStop(1, '#dde2e7');
      this.bg = g;
    }
    ctx.fillStyle = this.bg;
    ctx.fillRect(0, 0, this.cssW, this.cssH);
  };

  Viewer.prototype.drawMessage = function (text) {
    var ctx = this.ctx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    this.background(ctx);
    ctx.fillStyle = '#5b6670';
    ctx.font = FONT_BOLD;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    var w = this.cssW - 40;
    ctx.fillText(text, this.cssW / 2, this.cssH / 2, w > 0 ? w : undefined);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
  };

  Viewer.prototype.draw = function () {
    var d = this.data;
    var ctx = this.ctx;
    var t = this.t;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    this.background(ctx);

    // The tissue at t: the frame at or before t, blended towards the next.
    var f0 = this.frameAt(t);
    var f1 = Math.min(f0 + 1, d.frameN - 1);
    var T = d.frameT;
    var a = f1 > f0 && T[f1] > T[f0] ? clamp((t - T[f0]) / (T[f1] - T[f0]), 0, 1) : 0;
    this.section.setAttribute('data-frame', String(f0));
    var drawn = this.drawTissue(ctx, f0, f1, a);
    this.section.setAttribute('data-triangles', String(drawn));

    // The tool at t, between its samples.
    var tool = this.toolAt(t);
    this.drawTrail(ctx, tool);
    this.drawMarks(ctx);
    if (tool) this.drawTool(ctx, tool);
    this.drawHud(ctx, tool);
  };

  Viewer.prototype.drawTissue = function (ctx, f0, f1, a) {
    var d = this.data;
    var n = d.n;
    var n3 = 3 * n;
    var rest = d.rest;
    var disp = d.disp;
    var base = d.base;
    var b0 = f0 * n3;
    var b1 = f1 * n3;
    var pos = this.pos;
    var sx = this.sx;
    var sy = this.sy;
    var sz = this.sz;
    var dmag = this.dmag;
    var e = this.eye;
    var R = this.right;
    var U = this.up;
    var F = this.fwd;
    var s = this.scale;
    var ox = this.ox;
    var oy = this.oy;
    var b = 1 - a;
    for (var i = 0, k = 0; i < n; i++, k += 3) {
      var dx = disp[b0 + k] * b + disp[b1 + k] * a;
      var dy = disp[b0 + k + 1] * b + disp[b1 + k + 1] * a;
      var dz = disp[b0 + k + 2] * b + disp[b1 + k + 2] * a;
      var x = rest[k] + dx;
      var y = rest[k + 1] + dy;
      var z = rest[k + 2] + dz;
      pos[k] = x;
      pos[k + 1] = y;
      pos[k + 2] = z;
      var px = dx - base[k];
      var py = dy - base[k + 1];
      var pz = dz - base[k + 2];
      dmag[i] = Math.sqrt(px * px + py * py + pz * pz);
      var rx = x - e[0];
      var ry = y - e[1];
      var rz = z - e[2];
      var depth = rx * F[0] + ry * F[1] + rz * F[2];
      var inv = s / (depth > 1e-6 ? depth : 1e-6);
      sx[i] = ox + (rx * R[0] + ry * R[1] + rz * R[2]) * inv;
      sy[i] = oy - (rx * U[0] + ry * U[1] + rz * U[2]) * inv;
      sz[i] = depth;
    }

    // Front faces (outward, counter-clockwise seen from outside), shaded, keyed by depth.
    var tris = this.surfaceAt(f0).tris;
    var nt = tris.length / 3;
    var keys = this.keys;
    var shade = this.triShade;
    var vis = this.visible;
    var L = this.light;
    var zmin = Infinity;
    var zmax = -Infinity;
    var count = 0;
    for (var q = 0; q < nt; q++) {
      var ia = tris[3 * q];
      var ib = tris[3 * q + 1];
      var ic = tris[3 * q + 2];
      var ax = pos[3 * ia];
      var ay = pos[3 * ia + 1];
      var az = pos[3 * ia + 2];
      var ux = pos[3 * ib] - ax;
      var uy = pos[3 * ib + 1] - ay;
      var uz = pos[3 * ib + 2] - az;
      var vx = pos[3 * ic] - ax;
      var vy = pos[3 * ic + 1] - ay;
      var vz = pos[3 * ic + 2] - az;
      var nx = uy * vz - uz * vy;
      var ny = uz * vx - ux * vz;
      var nz = ux * vy - uy * vx;
      // Facing the eye?
      if (nx * (e[0] - ax) + ny * (e[1] - ay) + nz * (e[2] - az) <= 0) continue;
      var nl = Math.sqrt(nx * nx + ny * ny + nz * nz);
      if (!(nl > 0)) continue;
      var lam = (nx * L[0] + ny * L[1] + nz * L[2]) / nl;
      var lit = 0.22 + 0.78 * (lam > 0 ? lam : 0);
      var si = Math.round(lit * (SHADES - 1));
      var pm = (dmag[ia] + dmag[ib] + dmag[ic]) / (3 * PRESS_FULL_UNITS);
      var pi = pm >= 1 ? PRESS - 1 : Math.round(pm * (PRESS - 1));
      shade[q] = pi * SHADES + si;
      var depthSum = sz[ia] + sz[ib] + sz[ic];
      if (depthSum < zmin) zmin = depthSum;
      if (depthSum > zmax) zmax = depthSum;
      // The packed sort key is built once the depth range is known.
      keys[count] = depthSum;
      vis[count++] = q;
    }
    // Far first: key = quantised nearness * 2^21 + triangle index, sorted ascending.
    var range = zmax - zmin;
    var qs = range > 0 ? 1073741823 / range : 0;
    for (var c = 0; c < count; c++) {
      keys[c] = Math.floor((zmax - keys[c]) * qs) * SORT_SHIFT + vis[c];
    }
    var sorted = count === keys.length ? keys : keys.subarray(0, count);
    sorted.sort();

    // Paint, one path per run of equal colour; the stroke closes the seams between triangles.
    var colors = this.colors;
    ctx.lineJoin = 'round';
    ctx.lineWidth = 0.6;
    var cur = -1;
    for (c = 0; c < count; c++) {
      var key = sorted[c];
      var tq = key - Math.floor(key / SORT_SHIFT) * SORT_SHIFT;
      var col = shade[tq];
      if (col !== cur) {
        if (cur >= 0) {
          ctx.fill();
          ctx.stroke();
        }
        cur = col;
        ctx.fillStyle = colors[col];
        ctx.strokeStyle = colors[col];
        ctx.beginPath();
      }
      ia = tris[3 * tq];
      ib = tris[3 * tq + 1];
      ic = tris[3 * tq + 2];
      ctx.moveTo(sx[ia], sy[ia]);
      ctx.lineTo(sx[ib], sy[ib]);
      ctx.lineTo(sx[ic], sy[ic]);
      ctx.closePath();
    }
    if (cur >= 0) {
      ctx.fill();
      ctx.stroke();
    }
    return count;
  };

  /** The tool at t: {x, y, z, f, i} (i: the last sample at or before t), or null. */
  Viewer.prototype.toolAt = function (t) {
    var d = this.data;
    if (d.toolN === 0) return null;
    var u = t * d.toolRate;
    var i = Math.floor(u);
    if (i < 0) { i = 0; u = 0; }
    if (i >= d.toolN - 1) { i = d.toolN - 1; u = i; }
    var a = u - i;
    var j = Math.min(i + 1, d.toolN - 1);
    var T = d.tool;
    var tool = this.toolNow || (this.toolNow = { x: 0, y: 0, z: 0, f: 0, i: 0, a: 0 });
    tool.x = T[4 * i] + (T[4 * j] - T[4 * i]) * a;
    tool.y = T[4 * i + 1] + (T[4 * j + 1] - T[4 * i + 1]) * a;
    tool.z = T[4 * i + 2] + (T[4 * j + 2] - T[4 * i + 2]) * a;
    tool.f = T[4 * i + 3] + (T[4 * j + 3] - T[4 * i + 3]) * a;
    tool.i = i;
    tool.a = a;
    return tool;
  };

  Viewer.prototype.drawTrail = function (ctx, tool) {
    if (!tool) return;
    var d = this.data;
    var tr = this.trail;
    var T = d.tool;
    var safe = d.safeForce;
    var last = tool.i;
    ctx.lineWidth = 2;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    var cur = -1;
    for (var k = 0; k <= last; k++) {
      // Segment k -> k + 1 (the last one ends at the tool's interpolated position).
      var end = k === last;
      if (end && tool.a <= 0) break;
      var over = T[4 * k + 3] > safe || (end ? tool.f : T[4 * k + 7]) > safe ? 1 : 0;
      if (over !== cur) {
        if (cur >= 0) ctx.stroke();
        cur = over;
        ctx.strokeStyle = over ? 'rgba(214, 48, 49, 0.95)' : 'rgba(32, 150, 86, 0.9)';
        ctx.beginPath();
        ctx.moveTo(tr[2 * k], tr[2 * k + 1]);
      }
      if (end) {
        var ex = tr[2 * k] + ((k + 1 < d.toolN ? tr[2 * k + 2] : tr[2 * k]) - tr[2 * k]) * tool.a;
        var ey = tr[2 * k + 1] + ((k + 1 < d.toolN ? tr[2 * k + 3] : tr[2 * k + 1]) - tr[2 * k + 1]) * tool.a;
        ctx.lineTo(ex, ey);
      } else {
        ctx.lineTo(tr[2 * k + 2], tr[2 * k + 3]);
      }
    }
    if (cur >= 0) ctx.stroke();
  };

  Viewer.prototype.drawMarks = function (ctx) {
    var marks = this.data.marks;
    if (marks.length === 0) return;
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    for (var i = 0; i < marks.length; i++) {
      var m = marks[i];
      ctx.beginPath();
      ctx.arc(m.x, m.y, 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = '#ffffff';
      ctx.fill();
      ctx.lineWidth = 2;
      ctx.strokeStyle = m.color;
      if (m.deep) ctx.setLineDash([2, 2]); // seen through the tissue
      ctx.stroke();
      ctx.setLineDash(EMPTY);
      ctx.beginPath();
      ctx.arc(m.x, m.y, 1.6, 0, 2 * Math.PI);
      ctx.fillStyle = m.color;
      ctx.fill();
      var b = m.box;
      ctx.fillStyle = 'rgba(255, 255, 255, 0.85)';
      ctx.fillRect(b[0], b[1], b[2], 16);
      ctx.fillStyle = m.color;
      ctx.fillText(m.label, b[0] + 3, b[1] + 8);
    }
    ctx.textBaseline = 'alphabetic';
  };

  /** The surface height (units) under the tool: the nearest top particle in x, z. */
  Viewer.prototype.surfaceYUnder = function (x, z) {
    var top = this.top;
    var pos = this.pos;
    var best = Infinity;
    var y = this.max[1];
    for (var k = 0; k < top.length; k++) {
      var p = 3 * top[k];
      var dx = pos[p] - x;
      var dz = pos[p + 2] - z;
      var dd = dx * dx + dz * dz;
      if (dd < best) { best = dd; y = pos[p + 1]; }
    }
    return y;
  };

  Viewer.prototype.drawTool = function (ctx, tool) {
    var d = this.data;
    var out = this.tmp3 || (this.tmp3 = [0, 0, 0]);
    var r = d.toolRadius;
    var inside = tool.x >= this.min[0] && tool.x <= this.max[0] && tool.z >= this.min[2] && tool.z <= this.max[2];

    // Shadow on the surface under the tool, and a dashed drop line to it.
    if (inside) {
      var ys = this.surfaceYUnder(tool.x, tool.z);
      this.project(tool.x, ys, tool.z, out);
      var shx = out[0];
      var shy = out[1];
      var shr = this.scale * r / out[2];
      var gap = tool.y - r - ys;
      var soft = clamp(1 - gap / (0.25 * this.size), 0.25, 1);
      ctx.fillStyle = 'rgba(60, 30, 30, ' + (0.28 * soft).toFixed(3) + ')';
      ctx.beginPath();
      ctx.ellipse(shx, shy, shr * 1.1, shr * 0.62, 0, 0, 2 * Math.PI);
      ctx.fill();
      if (gap > 0) {
        this.project(tool.x, tool.y, tool.z, out);
        ctx.save();
        ctx.setLineDash([3, 3]);
        ctx.lineWidth = 1;
        ctx.strokeStyle = 'rgba(70, 80, 90, 0.75)';
        ctx.beginPath();
        ctx.moveTo(out[0], out[1]);
        ctx.lineTo(shx, shy);
        ctx.stroke();
        ctx.restore();
      }
    }

    // The shaft, up from the tip.
    this.project(tool.x, tool.y, tool.z, out);
    var cx = out[0];
    var cy = out[1];
    var rr = this.scale * r / out[2];
    this.project(tool.x, tool.y + 0.45 * this.size, tool.z, out);
    var shaftW = Math.max(2, rr * 0.75);
    var sg = ctx.createLinearGradient(cx - shaftW, 0, cx + shaftW, 0);
    sg.addColorStop(0, '#6d767e');
    sg.addColorStop(0.35, '#dfe3e7');
    sg.addColorStop(1, '#59616a');
    ctx.strokeStyle = sg;
    ctx.lineWidth = shaftW;
    ctx.lineCap = 'butt';
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(out[0], out[1]);
    ctx.stroke();

    // The tip: a metallic sphere of the tool's radius.
    var g = ctx.createRadialGradient(cx - 0.35 * rr, cy - 0.4 * rr, 0.1 * rr, cx, cy, rr);
    g.addColorStop(0, '#ffffff');
    g.addColorStop(0.25, '#d5dadf');
    g.addColorStop(0.75, '#8a939b');
    g.addColorStop(1, '#4c545b');
    ctx.fillStyle = g;
    ctx.beginPath();
    ctx.arc(cx, cy, Math.max(rr, 2), 0, 2 * Math.PI);
    ctx.fill();
    ctx.lineWidth = 1;
    ctx.strokeStyle = tool.f > d.safeForce ? 'rgba(214, 48, 49, 0.95)' : 'rgba(60, 66, 72, 0.8)';
    ctx.stroke();
  };

  Viewer.prototype.drawHud = function (ctx, tool) {
    var d = this.data;
    var W = this.cssW;
    var H = this.cssH;
    var t = this.t;
    var f = tool ? tool.f : 0;
    var over = f > d.safeForce;

    var depthText = '';
    if (tool) {
      var tip = tool.y - d.toolRadius;
      var mm = (this.max[1] - tip) * d.unit * 1000;
      depthText = mm > 0 ? 'tip ' + mm.toFixed(1) + ' mm below the surface' : 'tip ' + (-mm).toFixed(1) + ' mm above the surface';
    }
    var line2 = depthText + (depthText ? ' \u00b7 ' : '') + 'safe ' + d.safeForce.toFixed(1) + ' N';
    ctx.font = FONT;
    var pw = Math.max(250, Math.ceil(ctx.measureText(line2).width) + 18);

    // Read-out panel, top left.
    ctx.fillStyle = 'rgba(255, 255, 255, 0.88)';
    ctx.fillRect(10, 10, pw, 40);
    ctx.strokeStyle = 'rgba(90, 100, 110, 0.25)';
    ctx.lineWidth = 1;
    ctx.strokeRect(10.5, 10.5, pw - 1, 39);
    ctx.font = FONT_BOLD;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'left';
    ctx.fillStyle = '#27323c';
    ctx.fillText(t.toFixed(1) + ' s', 18, 22);
    ctx.fillStyle = over ? '#c0392b' : '#1e7d4a';
    ctx.fillText((tool ? f.toFixed(2) : '\u2013') + ' N', 78, 22);
    // Force bar against the safe force.
    var full = Math.max(d.safeForce * 1.6, d.maxForce, 0.1);
    var bx = 150;
    var bw = 100;
    ctx.fillStyle = '#e3e7eb';
    ctx.fillRect(bx, 17, bw, 10);
    ctx.fillStyle = over ? '#d63031' : '#27a05a';
    ctx.fillRect(bx, 17, bw * clamp(f / full, 0, 1), 10);
    var sxp = Math.round(bx + bw * clamp(d.safeForce / full, 0, 1)) + 0.5;
    ctx.strokeStyle = '#27323c';
    ctx.beginPath();
    ctx.moveTo(sxp, 14);
    ctx.lineTo(sxp, 30);
    ctx.stroke();
    ctx.font = FONT;
    ctx.fillStyle = '#55606a';
    ctx.fillText(line2, 18, 40);

    // Event flash, top right: an event at t or within the last 0.8 s.
    var spans = d.spans;
    var label = null;
    for (var i = spans.length - 1; i >= 0; i--) {
      var sp = spans[i];
      if (sp.start > t) continue;
      if (t - sp.end <= 0.8) label = sp;
      break;
    }
    if (label) {
      ctx.font = FONT_BOLD;
      var lw = ctx.measureText(label.kind.name).width;
      ctx.fillStyle = label.kind.color;
      ctx.fillRect(W - lw - 30, 14, lw + 20, 22);
      ctx.fillStyle = '#ffffff';
      ctx.fillText(label.kind.name, W - lw - 20, 25);
    }

    // Event strip and playhead, bottom.
    var x0 = 14;
    var x1 = W - 14;
    var yb = H - 12;
    ctx.fillStyle = 'rgba(90, 100, 110, 0.25)';
    ctx.fillRect(x0, yb - 2, x1 - x0, 4);
    var dur = d.duration > 0 ? d.duration : 1;
    for (i = 0; i < spans.length; i++) {
      sp = spans[i];
      var ex0 = x0 + (x1 - x0) * sp.start / dur;
      var ex1 = x0 + (x1 - x0) * sp.end / dur;
      ctx.fillStyle = sp.kind.color;
      ctx.fillRect(ex0 - 1, yb - 5, Math.max(2, ex1 - ex0), 10);
    }
    var px = x0 + (x1 - x0) * clamp(t / dur, 0, 1);
    ctx.fillStyle = '#27323c';
    ctx.fillRect(px - 1, yb - 7, 2, 14);

    // Legend, bottom left.
    ctx.font = FONT;
    var ly = H - 30;
    ctx.fillStyle = '#209656';
    ctx.fillRect(x0, ly - 1, 14, 3);
    ctx.fillStyle = '#4b5660';
    ctx.fillText('\u2264 ' + d.safeForce.toFixed(1) + ' N', x0 + 19, ly);
    ctx.fillStyle = '#d63031';
    ctx.fillRect(x0 + 80, ly - 1, 14, 3);
    ctx.fillStyle = '#4b5660';
    ctx.fillText('> ' + d.safeForce.toFixed(1) + ' N (tool path)', x0 + 99, ly);
    ctx.textAlign = 'right';
    ctx.fillText(d.duration.toFixed(1) + ' s', x1, ly);
    ctx.textAlign = 'left';
    ctx.textBaseline = 'alphabetic';
  };

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
