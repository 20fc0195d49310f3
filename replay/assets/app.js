// The replay viewer: metrics charts, step → group → sample → turn browsing with side-by-side
// comparison, evaluation tables, and live following of a run that is still being written.
'use strict';
(function () {
  const D = window.ReplayData;
  const C = window.ReplayChart;
  const P = window.ReplayPlan;
  const esc = C.escapeHtml;
  const fmt = C.format;
  const $ = (selector) => document.querySelector(selector);
  const POLL_MS = 2000;

  const state = {
    version: 0,
    metrics: null,
    rolloutSteps: [],
    evalSteps: [],
    checkpoints: [],
    evals: [],
    tab: 'metrics',
    step: null,
    stepData: null,
    sort: { key: 'reward', dir: -1 },
    // Up to two open samples: { step, group, sample, turn, record, focus }.
    panes: [null, null],
    charts: null,
  };
  const views3d = [null, null];

  // ---------------------------------------------------------------- charts

  // Which chart each metric goes to; metrics matching no rule get a chart per first segment.
  const CHART_RULES = [
    ['Total reward', (n) => n.startsWith('reward/total/'), (n) => n.slice(13)],
    ['Reward components (mean)', (n) => /^reward\/[^/]+\/mean$/.test(n), (n) => n.split('/')[1]],
    ['Reward components (std)', (n) => /^reward\/[^/]+\/std$/.test(n), (n) => n.split('/')[1]],
    ['Reward (other)', (n) => n.startsWith('reward/'), (n) => n.slice(7)],
    ['Loss', (n) => /^loss/.test(n)],
    ['KL to the reference', (n) => /^kl/.test(n)],
    ['Entropy', (n) => /^entropy/.test(n)],
    ['Response length (tokens)', (n) => /^response_length/.test(n)],
    ['Throughput (tokens/s)', (n) => /^(tokens_per_s|throughput)/.test(n)],
    ['Time breakdown (s)', (n) => n.startsWith('time/'), (n) => n.slice(5)],
    ['World model (auxiliary)', (n) => n.startsWith('aux/'), (n) => n.slice(4)],
  ];

  function chartLayout(names) {
    const charts = new Map();
    names.forEach((name) => {
      const rule = CHART_RULES.find(([, match]) => match(name));
      const title = rule ? rule[0] : name.split('/')[0];
      const label = rule && rule[2] ? rule[2](name) : name;
      if (!charts.has(title)) charts.set(title, []);
      charts.get(title).push({ name, label });
    });
    const order = CHART_RULES.map(([t]) => t);
    return [...charts.entries()].sort((a, b) => {
      const ia = order.indexOf(a[0]);
      const ib = order.indexOf(b[0]);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a[0].localeCompare(b[0]);
    });
  }

  function renderCharts() {
    const m = state.metrics;
    const names = Object.keys(m.series);
    const key = names.join('\n');
    if (!state.charts || state.charts.key !== key) {
      const parent = $('#charts');
      parent.replaceChildren();
      const group = new C.ChartGroup();
      const charts = chartLayout(names).map(([title, series]) => ({
        chart: new C.LineChart(parent, title, group, openNearestStep),
        series,
      }));
      state.charts = { key, group, charts };
      if (!names.length) parent.innerHTML = '<p class="note">metrics.jsonl has no complete line yet.</p>';
    }
    state.charts.group.markers = state.checkpoints.map((s) => ({ step: s, color: '#9ca3af' }))
      .concat(state.evalSteps.map((s) => ({ step: s, color: '#16a34a' })));
    state.charts.charts.forEach(({ chart, series }) => {
      chart.setData(m.step, series.map(({ name, label }) => ({ name, label, ys: m.series[name] })));
    });
  }

  function openNearestStep(step) {
    const steps = state.rolloutSteps;
    if (!steps.length) return;
    const best = steps.reduce((a, b) => (Math.abs(b - step) < Math.abs(a - step) ? b : a));
    showTab('rollouts');
    loadStep(best);
  }

  // ---------------------------------------------------------------- overview and live

  function applySummary(summary) {
    state.version = summary.version;
    state.rolloutSteps = summary.rollout_steps;
    state.evalSteps = summary.eval_steps;
    state.checkpoints = summary.checkpoints;
    const warnings = $('#warnings');
    warnings.hidden = !summary.warnings.length;
    warnings.querySelector('summary').textContent = summary.warnings.length + ' line(s) of the run could not be read';
    warnings.querySelector('ul').replaceChildren(...summary.warnings.map((w) => Object.assign(document.createElement('li'), { textContent: w })));
    $('#checkpoints').textContent = summary.checkpoints.length ? summary.checkpoints.map((s) => 'step ' + s).join(', ') : 'none yet';
  }

  async function loadOverview() {
    const overview = await D.overview();
    document.title = overview.run + ' · replay';
    $('#run-name').textContent = overview.run;
    $('#config').textContent = overview.config || '(no config.ron)';
    const m = overview.metrics;
    state.metrics = { step: m.step, elapsed: m.elapsed, series: m.series };
    applySummary(overview);
    renderCharts();
    updateStepBar();
    await loadEvals();
  }

  async function loadEvals() {
    state.evals = await D.evals();
    renderEvals();
  }

  async function poll() {
    const m = state.metrics;
    try {
      const news = await D.poll(state.version, m.step.length);
      setLive(true);
      if (news.unchanged) return;
      if (news.metrics.from !== m.step.length) {
        // The metrics file was rewritten: start over.
        await loadOverview();
        return;
      }
      const before = m.step.length;
      m.step.push(...news.metrics.step);
      m.elapsed.push(...news.metrics.elapsed);
      for (const [name, values] of Object.entries(news.metrics.series)) {
        if (!m.series[name]) m.series[name] = new Array(before).fill(null);
        m.series[name].push(...values);
      }
      const newEvals = news.eval_steps.join() !== state.evalSteps.join();
      const lastStep = state.rolloutSteps[state.rolloutSteps.length - 1];
      applySummary(news);
      renderCharts();
      updateStepBar();
      if (newEvals) await loadEvals();
      const latest = state.rolloutSteps[state.rolloutSteps.length - 1];
      if ($('#follow').checked && latest !== undefined && latest !== state.step) await loadStep(latest);
      else if (state.step !== null && state.step === lastStep) await loadStep(state.step, true);
    } catch (error) {
      setLive(false, error);
    }
  }

  function setLive(ok, error) {
    const live = $('#live');
    live.className = ok ? 'live' : 'offline';
    live.textContent = ok ? '● live' : '○ offline';
    live.title = ok ? 'Following the run: new steps appear as they are written' : String(error);
  }

  // ---------------------------------------------------------------- steps and groups

  function updateStepBar() {
    const steps = state.rolloutSteps;
    const slider = $('#step-slider');
    slider.max = Math.max(0, steps.length - 1);
    const i = steps.indexOf(state.step);
    if (i >= 0) slider.value = i;
    $('#step-info').textContent = steps.length
      ? steps.length + ' step(s) with rollouts, ' + steps[0] + '–' + steps[steps.length - 1]
      : 'no rollouts yet';
    if (state.step === null && steps.length && state.tab === 'rollouts') loadStep(steps[0]);
  }

  function moveStep(delta) {
    const steps = state.rolloutSteps;
    if (!steps.length) return;
    const i = steps.indexOf(state.step);
    const next = steps[Math.min(steps.length - 1, Math.max(0, (i < 0 ? 0 : i) + delta))];
    if (next !== state.step) loadStep(next);
  }

  // Loads a step's table; `keep` refreshes it in place (live) without touching the panes.
  async function loadStep(step, keep) {
    const data = await D.step(step);
    const changed = state.step !== step;
    state.step = step;
    state.stepData = data;
    $('#step-input').value = step;
    const i = state.rolloutSteps.indexOf(step);
    if (i >= 0) $('#step-slider').value = i;
    renderGroups();
    if (changed && !keep) {
      // Keep looking at the same group and sample as the step changes, where it exists.
      await Promise.all(state.panes.map((pane, k) => (pane
        ? openSample(k, step, pane.group, pane.sample, pane.turn)
        : null)));
    }
    updateHash();
  }

  const SORTS = {
    sample: (s) => s.sample,
    reward: (s) => s.reward,
    valid: (s) => (last(s).valid ? 1 : 0),
    collisions: (s) => last(s).collisions,
    bounds: (s) => last(s).out_of_bounds,
    relations: (s) => last(s).unsatisfied,
    tokens: (s) => s.turns.reduce((a, t) => a + t.response_tokens, 0),
  };
  const last = (s) => s.turns[s.turns.length - 1] || { valid: false, collisions: 0, out_of_bounds: 0, unsatisfied: 0 };

  function renderGroups() {
    const data = state.stepData;
    const root = $('#groups');
    root.replaceChildren();
    if (data.warnings.length) {
      root.insertAdjacentHTML('beforeend', '<p class="warn">' + data.warnings.map(esc).join('<br>') + '</p>');
    }
    const headers = [['sample', 'sample'], ['reward', 'reward'], [null, 'turns (reward, valid)'], ['valid', 'valid'],
      ['collisions', 'collisions'], ['bounds', 'out of bounds'], ['relations', 'relations unmet'], ['tokens', 'tokens'], [null, '']];
    data.groups.forEach((g) => {
      const samples = data.samples.filter((s) => s.group === g.group);
      const by = SORTS[state.sort.key];
      samples.sort((a, b) => state.sort.dir * (by(a) - by(b)) || a.sample - b.sample);
      const mean = samples.reduce((a, s) => a + s.reward, 0) / Math.max(1, samples.length);
      const card = document.createElement('div');
      card.className = 'group';
      card.innerHTML = '<h3>group ' + g.group + ' · <code>' + esc(g.room_id) + '</code> · ' +
        g.size.map((v) => fmt(v)).join(' × ') + ' m · ' + g.objects + ' objects · mean reward ' + fmt(mean) + '</h3>' +
        '<p class="desc">' + esc(g.description) + '</p>';
      const table = document.createElement('table');
      table.className = 'samples';
      const head = headers.map(([key, label]) => {
        const arrow = key === state.sort.key ? (state.sort.dir < 0 ? ' ▼' : ' ▲') : '';
        return '<th' + (key ? ' data-sort="' + key + '" class="sortable"' : '') + '>' + label + arrow + '</th>';
      }).join('');
      table.innerHTML = '<thead><tr>' + head + '</tr></thead><tbody></tbody>';
      const body = table.querySelector('tbody');
      samples.forEach((s) => {
        const f = last(s);
        const row = document.createElement('tr');
        row.className = 'sample-row';
        row.dataset.group = s.group;
        row.dataset.sample = s.sample;
        const badges = state.panes.map((p, k) => (p && p.step === state.step && p.group === s.group && p.sample === s.sample ? '<span class="badge">' + 'AB'[k] + '</span>' : '')).join('');
        row.innerHTML = '<td>' + badges + s.sample + '</td><td class="num">' + fmt(s.reward) + '</td><td>' +
          s.turns.map((t) => '<span class="chip ' + (t.valid ? 'ok' : 'bad') + '" title="turn ' + t.turn + (t.format_error ? ', unreadable answer' : '') + ', ' + t.finish + '">' + fmt(t.reward) + (t.format_error ? ' ⚠' : '') + '</span>').join(' → ') +
          '</td><td>' + (f.valid ? '✓' : '✗') + '</td><td class="num">' + f.collisions + '</td><td class="num">' + f.out_of_bounds +
          '</td><td class="num">' + f.unsatisfied + '</td><td class="num">' + SORTS.tokens(s) + '</td>' +
          '<td><button class="compare" title="Open beside the first sample (B)">B</button></td>';
        row.addEventListener('click', (e) => {
          const pane = e.target.classList.contains('compare') ? 1 : 0;
          openSample(pane, state.step, s.group, s.sample, state.panes[pane] ? state.panes[pane].turn : 1);
        });
        body.appendChild(row);
      });
      table.querySelectorAll('th.sortable').forEach((th) => th.addEventListener('click', () => {
        const key = th.dataset.sort;
        state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : -1 };
        renderGroups();
      }));
      card.appendChild(table);
      root.appendChild(card);
    });
  }

  // Samples in the order the table shows them, for j/k.
  function orderedSamples() {
    return [...document.querySelectorAll('#groups tr.sample-row')].map((r) => [Number(r.dataset.group), Number(r.dataset.sample)]);
  }

  // ---------------------------------------------------------------- sample panes

  async function openSample(k, step, group, sample, turn) {
    const record = await D.rollout(step, group, sample);
    if (!record) { state.panes[k] = null; renderPanes(); return; }
    const t = Math.min(Math.max(1, turn || 1), record.turns.length);
    state.panes[k] = { step, group, sample, turn: t, record, focus: null };
    if (!state.panes[0]) { state.panes[0] = state.panes[1]; state.panes[1] = null; }
    renderPanes();
    renderGroups();
    updateHash();
  }

  function closePane(k) {
    state.panes[k] = null;
    if (k === 0) { state.panes[0] = state.panes[1]; state.panes[1] = null; }
    renderPanes();
    renderGroups();
    updateHash();
  }

  function renderPanes() {
    const root = $('#panes');
    root.replaceChildren();
    const open = state.panes.filter(Boolean).length;
    root.className = open === 2 ? 'compare' : '';
    state.panes.forEach((pane, k) => { if (pane) root.appendChild(renderPane(pane, k)); });
  }

  function renderPane(pane, k) {
    const rec = pane.record;
    const turn = rec.turns[pane.turn - 1];
    const el = document.createElement('div');
    el.className = 'pane';
    el.dataset.pane = 'AB'[k];
    const tabs = rec.turns.map((t) => '<button class="turn' + (t.turn === pane.turn ? ' active' : '') + '" data-turn="' + t.turn + '">turn ' + t.turn + '</button>').join('');
    el.innerHTML =
      '<div class="pane-head"><span class="badge">' + 'AB'[k] + '</span> step ' + pane.step + ' · group ' + rec.group +
      ' · sample ' + rec.sample + ' · <code>' + esc(rec.room.id) + '</code> · reward ' + fmt(rec.reward) +
      '<span class="turns">' + tabs + '</span>' +
      (rec.turns.length > 1 ? '<button class="compare-turns" title="Open another turn of this sample beside this one">compare turns</button>' : '') +
      '<button class="close" title="Close (Esc closes B)">✕</button></div>' +
      '<div class="pane-body">' +
      '<div class="cols"><div>' + rewardTable(turn) + violationList(turn) + '</div>' +
      '<div class="images"></div></div>' +
      '<div class="cols"><figure><canvas class="plan"></canvas><figcaption>plan drawn from the layout (front edge thick)</figcaption></figure>' +
      '<figure class="view3d-slot"><figcaption>3D: drag to orbit, wheel to zoom</figcaption></figure></div>' +
      responseText(turn) + '</div>';
    el.querySelectorAll('button.turn').forEach((b) => b.addEventListener('click', () => {
      pane.turn = Number(b.dataset.turn);
      pane.focus = null;
      renderPanes();
      updateHash();
    }));
    const ct = el.querySelector('.compare-turns');
    if (ct) {
      ct.addEventListener('click', () => {
        const other = pane.turn < rec.turns.length ? pane.turn + 1 : pane.turn - 1;
        openSample(1 - k, pane.step, rec.group, rec.sample, other);
      });
    }
    el.querySelector('.close').addEventListener('click', () => closePane(k));

    const images = el.querySelector('.images');
    (turn.images || []).forEach((image) => {
      const fig = document.createElement('figure');
      const wrap = document.createElement('div');
      wrap.className = 'image-wrap';
      const img = new Image();
      img.className = 'render';
      img.alt = image.view + ' render of turn ' + turn.turn;
      img.dataset.view = image.view;
      img.src = D.fileUrl(image.path);
      wrap.appendChild(img);
      let caption = image.view;
      if (image.view === 'top') {
        const overlay = document.createElement('canvas');
        overlay.className = 'overlay';
        wrap.appendChild(overlay);
        const draw = () => P.drawOverlay(overlay, img, image.floor, rec.room, turn, pane.focus);
        img.addEventListener('load', draw);
        pane.redrawOverlay = draw;
        caption += ' · violations outlined';
      }
      fig.appendChild(wrap);
      fig.insertAdjacentHTML('beforeend', '<figcaption>' + esc(caption) + ' · <a href="' + esc(img.src) + '" target="_blank">full size</a></figcaption>');
      images.appendChild(fig);
    });
    if (!(turn.images || []).length) images.innerHTML = '<p class="note">no renders saved for this turn</p>';

    const plan = el.querySelector('canvas.plan');
    const slot = el.querySelector('.view3d-slot');
    if (!views3d[k]) {
      const canvas = document.createElement('canvas');
      canvas.className = 'view3d';
      views3d[k] = new window.ReplayView3D(canvas);
    }
    slot.insertBefore(views3d[k].canvas, slot.firstChild);
    const redraw = () => {
      P.drawPlan(plan, rec.room, turn, pane.focus);
      if (pane.redrawOverlay) pane.redrawOverlay();
      views3d[k].setScene(rec.room, turn, pane.focus);
    };
    el.querySelectorAll('.violations li[data-ids]').forEach((li) => {
      li.addEventListener('mouseenter', () => { pane.focus = new Set(li.dataset.ids.split(' ')); redraw(); });
      li.addEventListener('mouseleave', () => { pane.focus = null; redraw(); });
    });
    requestAnimationFrame(redraw);
    return el;
  }

  function rewardTable(turn) {
    const rows = Object.entries(turn.components || {}).sort((a, b) => a[0].localeCompare(b[0]))
      .map(([name, value]) => '<tr><td>' + esc(name) + '</td><td class="num ' + (value < 0 ? 'neg' : '') + '">' + fmt(value) + '</td></tr>');
    return '<h4>Reward</h4><table class="rewards"><tbody>' + rows.join('') + '</tbody><tfoot>' +
      '<tr><th>total</th><th class="num">' + fmt(turn.reward) + '</th></tr>' +
      '<tr><td>advantage</td><td class="num">' + fmt(turn.advantage) + '</td></tr>' +
      '<tr><td>valid scene</td><td class="num">' + (turn.valid ? 'yes' : 'no') + '</td></tr>' +
      '<tr><td>tokens (prompt / response)</td><td class="num">' + turn.prompt_tokens + ' / ' + turn.response_tokens + ' · ' + esc(turn.finish) + '</td></tr>' +
      '</tfoot></table>';
  }

  function violationList(turn) {
    const v = turn.violations || {};
    const item = (kind, ids, text) => '<li data-ids="' + esc(ids.join(' ')) + '"><span class="key" style="background:' +
      (P.COLOR[kind] || '#6b7280') + '"></span>' + text + '</li>';
    const items = [];
    (v.collisions || []).forEach((c) => items.push(item('collision', [c.a, c.b], '<b>' + esc(c.a) + '</b> and <b>' + esc(c.b) + '</b> collide, ' + fmt(c.depth) + ' m deep')));
    (v.out_of_bounds || []).forEach((o) => items.push(item('bounds', [o.id], '<b>' + esc(o.id) + '</b> is ' + fmt(100 * o.fraction) + '% outside, past the ' + esc(o.boundary.replace(/_/g, ' ')))));
    (v.unsupported || []).forEach((id) => items.push(item('unsupported', [id], '<b>' + esc(id) + '</b> is not supported')));
    const ids = (turn.poses || []).map((p) => p.id);
    (v.unsatisfied_relations || []).forEach((r) => items.push(item('relation', P.relationIds(r, ids), 'relation not met: ' + esc(P.relationText(r)))));
    (v.missing_objects || []).forEach((id) => items.push('<li><span class="key"></span><b>' + esc(id) + '</b> was not placed</li>'));
    return '<h4>Violations</h4>' + (items.length ? '<ul class="violations">' + items.join('') + '</ul>' : '<p class="ok">none — hover a violation to find it in the images</p>');
  }

  function responseText(turn) {
    let answer = turn.answer;
    try { if (answer) answer = JSON.stringify(JSON.parse(answer), null, 1); } catch (e) { /* shown as written */ }
    const block = (title, text, open) => (text ? '<details' + (open ? ' open' : '') + '><summary>' + title + '</summary><pre>' + esc(text) + '</pre></details>' : '');
    return '<div class="text">' +
      (turn.format_error ? '<p class="warn">answer could not be read: ' + esc(turn.format_error) + '</p>' : '') +
      block('prompt', turn.prompt, false) + block('reasoning', turn.reasoning, true) + block('answer', answer, true) +
      block('raw response', turn.response, false) + '</div>';
  }

  // ---------------------------------------------------------------- evaluation

  function renderEvals() {
    const root = $('#evals');
    const reports = state.evals;
    if (!reports.length) { root.innerHTML = '<p class="note">No evaluation yet (eval/step-NNNNNN.json).</p>'; return; }
    const names = [...new Set(reports.flatMap((r) => r.metrics.map((m) => m.name)))];
    const head = reports.map((r) => '<th>step ' + r.step + '<br><small>' + esc(r.rooms) + ', ' + r.count + ' rooms</small></th>').join('');
    const rows = names.map((name) => '<tr><td>' + esc(name) + '</td>' + reports.map((r) => {
      const m = r.metrics.find((x) => x.name === name);
      return '<td class="num">' + (m ? fmt(m.value) + ' <small>± ' + fmt(m.stderr) + '</small>' : '—') + '</td>';
    }).join('') + '</tr>').join('');
    root.innerHTML = '<p class="hint">One column per evaluated checkpoint: mean ± standard error over held-out rooms.</p>' +
      '<table class="evals"><thead><tr><th>metric</th>' + head + '</tr></thead><tbody>' + rows + '</tbody></table>';
  }

  // ---------------------------------------------------------------- navigation

  function showTab(tab) {
    state.tab = tab;
    document.querySelectorAll('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === tab));
    document.querySelectorAll('main > section').forEach((s) => { s.hidden = s.id !== 'tab-' + tab; });
    if (tab === 'rollouts' && state.step === null && state.rolloutSteps.length) loadStep(state.rolloutSteps[0]);
    if (tab === 'metrics' && state.charts) state.charts.charts.forEach(({ chart }) => chart.draw());
    updateHash();
  }

  // #rollouts/STEP/G.S.T/G.S.T keeps the place across reloads and can be shared.
  function updateHash() {
    let hash = '#' + state.tab;
    if (state.tab === 'rollouts' && state.step !== null) {
      hash += '/' + state.step;
      state.panes.forEach((p) => { if (p) hash += '/' + p.group + '.' + p.sample + '.' + p.turn; });
    }
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  async function restoreHash() {
    const [tab, step, ...panes] = location.hash.slice(1).split('/');
    if (!['metrics', 'rollouts', 'evals', 'config'].includes(tab)) return;
    showTab(tab);
    if (tab !== 'rollouts' || step === undefined || !state.rolloutSteps.includes(Number(step))) return;
    await loadStep(Number(step));
    for (let k = 0; k < Math.min(2, panes.length); k++) {
      const [g, s, t] = panes[k].split('.').map(Number);
      await openSample(k, Number(step), g, s, t);
    }
  }

  function listen() {
    document.querySelectorAll('#tabs button').forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));
    $('#step-prev').addEventListener('click', () => moveStep(-1));
    $('#step-next').addEventListener('click', () => moveStep(1));
    $('#step-slider').addEventListener('input', (e) => {
      const step = state.rolloutSteps[Number(e.target.value)];
      if (step !== undefined) loadStep(step);
    });
    $('#step-input').addEventListener('change', (e) => openNearestStep(Number(e.target.value)));
    document.addEventListener('keydown', (e) => {
      if (state.tab !== 'rollouts' || e.target.tagName === 'INPUT' || e.metaKey || e.ctrlKey || e.altKey) return;
      if (e.key === 'ArrowLeft') moveStep(-1);
      else if (e.key === 'ArrowRight') moveStep(1);
      else if (e.key === 'Escape' && state.panes[1]) closePane(1);
      else if (e.key === 'j' || e.key === 'k') {
        const order = orderedSamples();
        const a = state.panes[0];
        const i = a ? order.findIndex(([g, s]) => g === a.group && s === a.sample) : -1;
        const next = order[Math.min(order.length - 1, Math.max(0, i + (e.key === 'j' ? 1 : -1)))];
        if (next) openSample(0, state.step, next[0], next[1], a ? a.turn : 1);
      } else if (/^[1-9]$/.test(e.key) && state.panes[0] && Number(e.key) <= state.panes[0].record.turns.length) {
        state.panes[0].turn = Number(e.key);
        state.panes[0].focus = null;
        renderPanes();
        updateHash();
      }
    });
  }

  async function start() {
    listen();
    try {
      await loadOverview();
      await restoreHash();
    } catch (error) {
      document.body.insertAdjacentHTML('afterbegin', '<p class="warn">Cannot load the run: ' + esc(String(error)) + '</p>');
      return;
    }
    if (D.isStatic) {
      $('#live').textContent = 'static export';
      $('#follow').disabled = true;
    } else {
      setLive(true);
      setInterval(poll, POLL_MS);
    }
    window.__replayReady = true;
  }

  start();
})();
