// A small canvas line chart: many series over steps, zoom (drag or wheel), hover values.
// Charts of one ChartGroup share their step range, so zooming one zooms all.
'use strict';
(function () {
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777',
    '#65a30d', '#475569', '#ea580c', '#0d9488', '#9333ea'];
  const PAD = { left: 56, right: 12, top: 8, bottom: 22 };

  // Round tick steps (1, 2, 5 × 10^k) giving about `count` ticks over [lo, hi].
  function ticks(lo, hi, count) {
    if (!(hi > lo)) return [lo];
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(v);
    return out;
  }

  function format(v) {
    if (v === null || v === undefined || !isFinite(v)) return '—';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(2);
    return Number(v.toPrecision(4)).toString();
  }

  // First index with xs[i] >= x (xs ascending).
  function lowerBound(xs, x) {
    let lo = 0;
    let hi = xs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (xs[mid] < x) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  class ChartGroup {
    constructor() {
      this.charts = [];
      this.range = null;
      this.markers = [];
    }
    setRange(range) {
      this.range = range;
      this.charts.forEach((c) => c.draw());
    }
    fullRange() {
      let lo = Infinity;
      let hi = -Infinity;
      this.charts.forEach((c) => {
        if (c.xs.length) { lo = Math.min(lo, c.xs[0]); hi = Math.max(hi, c.xs[c.xs.length - 1]); }
      });
      return lo <= hi ? [lo, hi === lo ? lo + 1 : hi] : [0, 1];
    }
  }

  class LineChart {
    // onPick(step) is called when a point is clicked without dragging.
    constructor(parent, title, group, onPick) {
      this.group = group;
      this.onPick = onPick;
      this.xs = [];
      this.series = [];
      this.hidden = new Set();
      this.hover = null;
      this.drag = null;
      this.root = document.createElement('div');
      this.root.className = 'chart';
      this.root.innerHTML = '<h3></h3><div class="legend"></div><div class="plot"><canvas></canvas><div class="tooltip" hidden></div></div>';
      this.root.querySelector('h3').textContent = title;
      this.legend = this.root.querySelector('.legend');
      this.canvas = this.root.querySelector('canvas');
      this.tooltip = this.root.querySelector('.tooltip');
      parent.appendChild(this.root);
      group.charts.push(this);
      this.listen();
    }

    setData(xs, series) {
      this.xs = xs;
      this.series = series;
      this.legend.replaceChildren(...series.map((s, i) => {
        const item = document.createElement('span');
        item.className = 'item' + (this.hidden.has(s.name) ? ' off' : '');
        item.innerHTML = '<i></i>';
        item.firstChild.style.background = COLORS[i % COLORS.length];
        item.append(s.label || s.name);
        item.title = 'Show or hide ' + s.name;
        item.onclick = () => {
          if (this.hidden.has(s.name)) this.hidden.delete(s.name); else this.hidden.add(s.name);
          item.classList.toggle('off');
          this.draw();
        };
        return item;
      }));
      this.draw();
    }

    range() { return this.group.range || this.group.fullRange(); }

    // Plot-area geometry in CSS pixels.
    frame() {
      const w = this.canvas.clientWidth;
      const h = this.canvas.clientHeight;
      return { w, h, x0: PAD.left, x1: w - PAD.right, y0: PAD.top, y1: h - PAD.bottom };
    }

    stepAt(px) {
      const f = this.frame();
      const [lo, hi] = this.range();
      return lo + ((px - f.x0) / (f.x1 - f.x0)) * (hi - lo);
    }

    listen() {
      const c = this.canvas;
      const pos = (e) => { const r = c.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
      c.addEventListener('mousedown', (e) => { this.drag = { from: pos(e)[0], to: pos(e)[0] }; });
      c.addEventListener('mousemove', (e) => {
        const [x] = pos(e);
        if (this.drag) this.drag.to = x;
        this.hover = x;
        this.draw();
      });
      c.addEventListener('mouseleave', () => { this.hover = null; this.drag = null; this.draw(); });
      c.addEventListener('mouseup', () => {
        const d = this.drag;
        this.drag = null;
        if (!d) return;
        if (Math.abs(d.to - d.from) > 4) {
          const a = this.stepAt(Math.min(d.from, d.to));
          const b = this.stepAt(Math.max(d.from, d.to));
          this.group.setRange([a, b]);
        } else if (this.onPick) {
          const i = this.nearest(d.from);
          if (i !== null) this.onPick(this.xs[i]);
        }
      });
      c.addEventListener('wheel', (e) => {
        e.preventDefault();
        const [lo, hi] = this.range();
        const at = this.stepAt(pos(e)[0]);
        const k = e.deltaY > 0 ? 1.25 : 0.8;
        const [flo, fhi] = this.group.fullRange();
        const a = Math.max(flo, at - (at - lo) * k);
        const b = Math.min(fhi, at + (hi - at) * k);
        this.group.setRange(b - a >= fhi - flo ? null : [a, Math.max(b, a + 1e-9)]);
      }, { passive: false });
      c.addEventListener('dblclick', () => this.group.setRange(null));
      new ResizeObserver(() => this.draw()).observe(c);
    }

    nearest(px) {
      if (!this.xs.length) return null;
      const x = this.stepAt(px);
      const i = lowerBound(this.xs, x);
      if (i === 0) return 0;
      if (i >= this.xs.length) return this.xs.length - 1;
      return x - this.xs[i - 1] < this.xs[i] - x ? i - 1 : i;
    }

    draw() {
      if (this.pending) return;
      this.pending = requestAnimationFrame(() => { this.pending = null; this.paint(); });
    }

    paint() {
      const dpr = window.devicePixelRatio || 1;
      const f = this.frame();
      if (!f.w || !f.h) return;
      this.canvas.width = Math.round(f.w * dpr);
      this.canvas.height = Math.round(f.h * dpr);
      const ctx = this.canvas.getContext('2d');
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, f.w, f.h);
      const [lo, hi] = this.range();
      const i0 = Math.max(0, lowerBound(this.xs, lo) - 1);
      const i1 = Math.min(this.xs.length, lowerBound(this.xs, hi) + 1);
      const shown = this.series.map((s, k) => ({ s, k })).filter(({ s }) => !this.hidden.has(s.name));
      let ylo = Infinity;
      let yhi = -Infinity;
      shown.forEach(({ s }) => {
        for (let i = i0; i < i1; i++) {
          const v = s.ys[i];
          if (v !== null && isFinite(v)) { if (v < ylo) ylo = v; if (v > yhi) yhi = v; }
        }
      });
      if (!(ylo <= yhi)) { ylo = 0; yhi = 1; }
      if (ylo === yhi) { ylo -= 0.5; yhi += 0.5; }
      const margin = (yhi - ylo) * 0.05;
      ylo -= margin; yhi += margin;
      const X = (x) => f.x0 + ((x - lo) / (hi - lo)) * (f.x1 - f.x0);
      const Y = (y) => f.y1 - ((y - ylo) / (yhi - ylo)) * (f.y1 - f.y0);

      ctx.font = '11px system-ui, sans-serif';
      ctx.strokeStyle = '#e5e7eb';
      ctx.fillStyle = '#6b7280';
      ctx.lineWidth = 1;
      ctx.textAlign = 'right';
      ctx.textBaseline = 'middle';
      ticks(ylo, yhi, 4).forEach((v) => {
        const y = Math.round(Y(v)) + 0.5;
        ctx.beginPath(); ctx.moveTo(f.x0, y); ctx.lineTo(f.x1, y); ctx.stroke();
        ctx.fillText(format(v), f.x0 - 4, y);
      });
      ctx.textAlign = 'center';
      ctx.textBaseline = 'top';
      ticks(lo, hi, 6).filter((v) => Number.isInteger(v) || hi - lo < 6).forEach((v) => {
        ctx.fillText(format(v), X(v), f.y1 + 5);
      });
      ctx.save();
      ctx.beginPath();
      ctx.rect(f.x0, f.y0, f.x1 - f.x0, f.y1 - f.y0);
      ctx.clip();
      ctx.setLineDash([3, 3]);
      this.group.markers.forEach((m) => {
        if (m.step < lo || m.step > hi) return;
        ctx.strokeStyle = m.color;
        const x = Math.round(X(m.step)) + 0.5;
        ctx.beginPath(); ctx.moveTo(x, f.y0); ctx.lineTo(x, f.y1); ctx.stroke();
      });
      ctx.setLineDash([]);
      ctx.lineWidth = 1.5;
      ctx.lineJoin = 'round';
      shown.forEach(({ s, k }) => {
        ctx.strokeStyle = COLORS[k % COLORS.length];
        this.trace(ctx, s.ys, i0, i1, X, Y, f);
      });
      ctx.restore();

      if (this.drag && Math.abs(this.drag.to - this.drag.from) > 4) {
        ctx.fillStyle = 'rgba(37, 99, 235, 0.12)';
        ctx.fillRect(Math.min(this.drag.from, this.drag.to), f.y0, Math.abs(this.drag.to - this.drag.from), f.y1 - f.y0);
      }
      this.showHover(ctx, f, X, Y, shown);
    }

    // Draws one series; with more points than pixels it draws each pixel column's min and
    // max, which keeps spikes visible and the cost proportional to the width.
    trace(ctx, ys, i0, i1, X, Y, f) {
      const dense = i1 - i0 > 2 * (f.x1 - f.x0);
      ctx.beginPath();
      let pen = false;
      if (!dense) {
        for (let i = i0; i < i1; i++) {
          const v = ys[i];
          if (v === null || !isFinite(v)) { pen = false; continue; }
          if (pen) ctx.lineTo(X(this.xs[i]), Y(v)); else ctx.moveTo(X(this.xs[i]), Y(v));
          pen = true;
        }
      } else {
        let col = null;
        let mn = 0;
        let mx = 0;
        const flush = () => {
          if (col === null) return;
          if (pen) ctx.lineTo(col, Y(mn)); else ctx.moveTo(col, Y(mn));
          ctx.lineTo(col, Y(mx));
          pen = true;
        };
        for (let i = i0; i < i1; i++) {
          const v = ys[i];
          if (v === null || !isFinite(v)) continue;
          const c = Math.round(X(this.xs[i]));
          if (c !== col) { flush(); col = c; mn = v; mx = v; } else { mn = Math.min(mn, v); mx = Math.max(mx, v); }
        }
        flush();
      }
      ctx.stroke();
    }

    showHover(ctx, f, X, Y, shown) {
      if (this.hover === null || this.drag || this.hover < f.x0 || this.hover > f.x1) {
        this.tooltip.hidden = true;
        return;
      }
      const i = this.nearest(this.hover);
      if (i === null) { this.tooltip.hidden = true; return; }
      const x = X(this.xs[i]);
      ctx.strokeStyle = '#9ca3af';
      ctx.beginPath(); ctx.moveTo(x, f.y0); ctx.lineTo(x, f.y1); ctx.stroke();
      const rows = ['<b>step ' + this.xs[i] + '</b>'];
      shown.forEach(({ s, k }) => {
        const v = s.ys[i];
        if (v !== null && isFinite(v)) {
          ctx.fillStyle = COLORS[k % COLORS.length];
          ctx.beginPath(); ctx.arc(x, Y(v), 3, 0, 2 * Math.PI); ctx.fill();
        }
        rows.push('<span style="color:' + COLORS[k % COLORS.length] + '">■</span> ' +
          escapeHtml(s.label || s.name) + ': ' + format(v));
      });
      this.tooltip.innerHTML = rows.join('<br>');
      this.tooltip.hidden = false;
      const left = x + 12 + this.tooltip.offsetWidth > f.w ? x - 12 - this.tooltip.offsetWidth : x + 12;
      this.tooltip.style.left = left + 'px';
      this.tooltip.style.top = f.y0 + 'px';
    }
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }

  window.ReplayChart = { ChartGroup, LineChart, format, escapeHtml };
})();
