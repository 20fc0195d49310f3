// Where the app's data comes from: the viewer's JSON API when served, or scripts written by
// `--export` when opened from disk (browsers refuse fetch() on file:// pages, but not <script>).
'use strict';
(function () {
  const store = {};
  const waiting = {};
  window.__replayPut = function (key, value) {
    store[key] = value;
    (waiting[key] || []).forEach((resolve) => resolve(value));
    delete waiting[key];
  };
  // The export's index.html loads data/overview.js before this file's callers run.
  const isStatic = () => 'overview' in store;

  function loadScript(key, src) {
    if (key in store) return Promise.resolve(store[key]);
    return new Promise((resolve, reject) => {
      (waiting[key] = waiting[key] || []).push(resolve);
      const script = document.createElement('script');
      script.src = src;
      script.onerror = () => reject(new Error('cannot load ' + src));
      document.head.appendChild(script);
    });
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: 'no-store' });
    if (!response.ok) throw new Error(url + ': ' + response.status + ' ' + (await response.text()));
    return response.json();
  }

  const stepFile = (n) => 'data/step-' + String(n).padStart(6, '0') + '.js';
  const staticStep = (n) => loadScript('step/' + n, stepFile(n));

  window.ReplayData = {
    get isStatic() { return isStatic(); },
    overview: () => (isStatic() ? Promise.resolve(store.overview) : getJson('api/overview')),
    evals: () => (isStatic() ? Promise.resolve(store.evals || []) : getJson('api/evals')),
    step: (n) => (isStatic() ? staticStep(n).then((d) => d.summary) : getJson('api/step/' + n)),
    rollout: (n, g, s) => (isStatic()
      ? staticStep(n).then((d) => d.records.find((r) => r.group === g && r.sample === s))
      : getJson('api/rollout/' + n + '/' + g + '/' + s)),
    poll: (version, rows) => getJson('api/poll?version=' + version + '&rows=' + rows),
    fileUrl: (path) => 'files/' + path.split('/').map(encodeURIComponent).join('/'),
  };
})();
