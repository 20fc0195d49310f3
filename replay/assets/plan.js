// Layout geometry shared by the 2D plan, the overlay on the rendered top view and the 3D view.
// Conventions: metres, z up, room [0,L]×[0,W]; a pose is the box centre and a heading in degrees
// clockwise seen from above, 0 facing +y; an object's size is [left-right, front-back, height].
'use strict';
(function () {
  // Violation kinds, in drawing priority, with their colours.
  const KINDS = [
    ['collision', '#dc2626', 'collides'],
    ['bounds', '#ea580c', 'out of bounds'],
    ['unsupported', '#9333ea', 'unsupported'],
    ['relation', '#ca8a04', 'relation unmet'],
  ];
  const COLOR = Object.fromEntries(KINDS.map(([k, c]) => [k, c]));
  // A stable hue per category, so a bed has the same colour in every view and sample.
  function categoryHue(category) {
    let h = 0;
    for (const ch of category) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
    return h % 360;
  }

  function categoryColor(category) {
    return 'hsl(' + categoryHue(category) + ', 45%, 62%)';
  }

  // Object ids that a violation sentence names (`bed_1 against north_wall`).
  function idsIn(text, ids) {
    const words = new Set(String(text).split(/[^A-Za-z0-9_.-]+/));
    return ids.filter((id) => words.has(id));
  }

  // The placed objects an unmet relation names: its subject and object, or (runs recorded
  // before relations were structured) the ids its sentence mentions.
  function relationIds(r, ids) {
    if (typeof r === 'string') return idsIn(r, ids);
    return ids.filter((id) => id === r.subject || id === r.object);
  }

  // An unmet relation in words.
  function relationText(r) {
    return typeof r === 'string' ? r : r.subject + ' ' + r.relation + ' ' + r.object;
  }

  // Map id → Set of violation kinds of one turn.
  function marksOf(turn, ids) {
    const marks = new Map(ids.map((id) => [id, new Set()]));
    const add = (id, kind) => { if (marks.has(id)) marks.get(id).add(kind); };
    const v = turn.violations || {};
    (v.collisions || []).forEach((c) => { add(c.a, 'collision'); add(c.b, 'collision'); });
    (v.out_of_bounds || []).forEach((o) => add(o.id, 'bounds'));
    (v.unsupported || []).forEach((id) => add(id, 'unsupported'));
    (v.unsatisfied_relations || []).forEach((r) => relationIds(r, ids).forEach((id) => add(id, 'relation')));
    return marks;
  }

  function mainKind(kinds) {
    const hit = KINDS.find(([k]) => kinds && kinds.has(k));
    return hit ? hit[0] : null;
  }

  // The placed objects of a turn with their sizes, categories and violation marks.
  function items(room, turn) {
    const objects = new Map(room.objects.map((o) => [o.id, o]));
    const marks = marksOf(turn, room.objects.map((o) => o.id));
    return (turn.poses || []).filter((p) => objects.has(p.id)).map((p) => ({
      id: p.id,
      category: objects.get(p.id).category,
      size: objects.get(p.id).size,
      pose: p,
      marks: marks.get(p.id),
    }));
  }

  // The four floor corners of an object: back-left, back-right, front-right, front-left.
  function footprint(size, pose) {
    const t = (pose.rotation * Math.PI) / 180;
    const r = [Math.cos(t), -Math.sin(t)];
    const f = [Math.sin(t), Math.cos(t)];
    const [x, y] = pose.position;
    const corner = (a, b) => [x + (r[0] * a * size[0]) / 2 + (f[0] * b * size[1]) / 2,
      y + (r[1] * a * size[0]) / 2 + (f[1] * b * size[1]) / 2];
    return [corner(-1, -1), corner(1, -1), corner(1, 1), corner(-1, 1)];
  }

  // World (x, y) → canvas pixels for a room of length L and width W centred in a w×h image
  // with `margin` metres around it, north up.
  function framing(L, W, margin, w, h) {
    let hx = L / 2 + margin;
    let hy = W / 2 + margin;
    if (hx / hy < w / h) hx = (hy * w) / h; else hy = (hx * h) / w;
    return {
      px: (x, y) => [w / 2 + ((x - L / 2) / hx) * (w / 2), h / 2 - ((y - W / 2) / hy) * (h / 2)],
      scale: w / 2 / hx,
    };
  }

  function path(ctx, points, to) {
    ctx.beginPath();
    points.forEach((p, i) => { const [a, b] = to(p[0], p[1]); if (i) ctx.lineTo(a, b); else ctx.moveTo(a, b); });
    ctx.closePath();
  }

  function prepare(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    return { ctx, w, h };
  }

  // The plan we draw ourselves: exact, whatever the renderer does. `focus` is a Set of ids
  // to emphasise (the violation under the pointer).
  function drawPlan(canvas, room, turn, focus) {
    const { ctx, w, h } = prepare(canvas);
    if (!w || !h) return;
    const [L, W] = room.size;
    const { px, scale } = framing(L, W, 0.4, w, h);
    ctx.fillStyle = '#f3efe6';
    path(ctx, [[0, 0], [L, 0], [L, W], [0, W]], px);
    ctx.fill();
    ctx.strokeStyle = '#e2dccf';
    ctx.lineWidth = 1;
    for (let x = 1; x < L; x++) { ctx.beginPath(); ctx.moveTo(...px(x, 0)); ctx.lineTo(...px(x, W)); ctx.stroke(); }
    for (let y = 1; y < W; y++) { ctx.beginPath(); ctx.moveTo(...px(0, y)); ctx.lineTo(...px(L, y)); ctx.stroke(); }
    ctx.strokeStyle = '#6b7280';
    ctx.lineWidth = Math.max(2, 0.08 * scale);
    path(ctx, [[0, 0], [L, 0], [L, W], [0, W]], px);
    ctx.stroke();
    ctx.fillStyle = '#6b7280';
    ctx.font = '10px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('N', ...px(L / 2, W + 0.22));
    const list = items(room, turn);
    list.forEach((it) => {
      const corners = footprint(it.size, it.pose);
      const kind = mainKind(it.marks);
      const focused = focus && focus.has(it.id);
      ctx.globalAlpha = 0.85;
      ctx.fillStyle = categoryColor(it.category);
      path(ctx, corners, px);
      ctx.fill();
      ctx.globalAlpha = 1;
      ctx.strokeStyle = kind ? COLOR[kind] : '#374151';
      ctx.lineWidth = focused ? 4 : kind ? 2.5 : 1;
      ctx.setLineDash(kind === 'relation' ? [5, 3] : []);
      path(ctx, corners, px);
      ctx.stroke();
      ctx.setLineDash([]);
      // The front edge, thick, shows the heading.
      ctx.strokeStyle = '#111827';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(...px(...corners[2]));
      ctx.lineTo(...px(...corners[3]));
      ctx.stroke();
      const [cx, cy] = px(it.pose.position[0], it.pose.position[1]);
      ctx.fillStyle = '#111827';
      ctx.fillText(it.id, cx, cy);
    });
  }

  // Outlines the violating objects over the renderer's top view. `floor` is the floor
  // rectangle the image shows edge to edge ([x_min, y_min, x_max, y_max], from the camera that
  // drew it); runs recorded without it get no overlay.
  function drawOverlay(canvas, image, floor, room, turn, focus) {
    const { ctx, w, h } = prepare(canvas);
    if (!w || !h || !image.naturalWidth || !floor) return;
    const [x0, y0, x1, y1] = floor;
    const px = (x, y) => [((x - x0) / (x1 - x0)) * w, ((y1 - y) / (y1 - y0)) * h];
    items(room, turn).forEach((it) => {
      const kind = mainKind(it.marks);
      const focused = focus && focus.has(it.id);
      if (!kind && !focused) return;
      ctx.strokeStyle = kind ? COLOR[kind] : '#2563eb';
      ctx.lineWidth = focused ? 3.5 : 2;
      ctx.setLineDash(kind === 'relation' ? [5, 3] : []);
      path(ctx, footprint(it.size, it.pose), px);
      ctx.stroke();
    });
  }

  window.ReplayPlan = { KINDS, COLOR, categoryHue, categoryColor, idsIn, relationIds, relationText, items, mainKind, footprint, drawPlan, drawOverlay };
})();
