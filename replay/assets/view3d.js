// Interactive 3D view of a layout in WebGL: the floor, low walls, the room's edges and one box
// per object; drag to orbit, wheel to zoom. Matrices are column-major, as WebGL expects.
'use strict';
(function () {
  const BACKGROUND = [0.96, 0.97, 0.98, 1];
  const FLOATS = 10; // position 3, normal 3, colour 4

  const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
  const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const normalize = (a) => { const l = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / l, a[1] / l, a[2] / l]; };

  function perspective(fovy, aspect, near, far) {
    const f = 1 / Math.tan(fovy / 2);
    const nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }

  function lookAt(eye, target, up) {
    const z = normalize(sub(eye, target));
    const x = normalize(cross(up, z));
    const y = cross(z, x);
    return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
      -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
  }

  function multiply(a, b) {
    const out = new Array(16).fill(0);
    for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) out[c * 4 + r] += a[k * 4 + r] * b[c * 4 + k];
    return out;
  }

  function hsl(h, s, l) {
    const k = (n) => (n + h / 30) % 12;
    const a = s * Math.min(l, 1 - l);
    const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1));
    return [f(0), f(8), f(4)];
  }

  const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16) / 255);
  const mix = (a, b, t) => a.map((v, i) => v * (1 - t) + b[i] * t);

  // Corners of a box: centre, half extents along its right, front and up axes.
  function boxFrame(centre, size, rotation) {
    const t = (rotation * Math.PI) / 180;
    const axes = [[Math.cos(t), -Math.sin(t), 0], [Math.sin(t), Math.cos(t), 0], [0, 0, 1]];
    const half = [size[0] / 2, size[1] / 2, size[2] / 2];
    const at = (s) => [0, 1, 2].map((d) => centre[d] + axes[0][d] * s[0] * half[0] + axes[1][d] * s[1] * half[1] + axes[2][d] * s[2] * half[2]);
    return { axes, at };
  }

  // Six faces as twelve triangles; `front` colours the +front face so the heading shows.
  function pushBox(out, centre, size, rotation, color, front) {
    const { axes, at } = boxFrame(centre, size, rotation);
    for (let k = 0; k < 3; k++) {
      const [i, j] = [0, 1, 2].filter((d) => d !== k);
      for (const sign of [-1, 1]) {
        const normal = axes[k].map((v) => v * sign);
        const rgb = k === 1 && sign === 1 && front ? front : color;
        const quad = [[-1, -1], [1, -1], [1, 1], [-1, 1]].map(([a, b]) => {
          const s = [0, 0, 0];
          s[k] = sign; s[i] = a; s[j] = b;
          return at(s);
        });
        [0, 1, 2, 0, 2, 3].forEach((q) => out.push(...quad[q], ...normal, ...rgb, 1));
      }
    }
  }

  function pushEdges(out, centre, size, rotation, color) {
    const { at } = boxFrame(centre, size, rotation);
    const corners = [];
    for (let n = 0; n < 8; n++) corners.push(at([n & 1 ? 1 : -1, n & 2 ? 1 : -1, n & 4 ? 1 : -1]));
    for (let a = 0; a < 8; a++) {
      for (const bit of [1, 2, 4]) {
        const b = a | bit;
        if (b !== a) out.push(...corners[a], 0, 0, 1, ...color, 1, ...corners[b], 0, 0, 1, ...color, 1);
      }
    }
  }

  const VERTEX = `
    attribute vec3 aPos; attribute vec3 aNormal; attribute vec4 aColor;
    uniform mat4 uMvp; uniform float uLit;
    varying vec4 vColor;
    void main() {
      gl_Position = uMvp * vec4(aPos, 1.0);
      float light = 0.55 + 0.45 * max(dot(normalize(aNormal), normalize(vec3(0.35, -0.5, 0.8))), 0.0);
      vColor = vec4(aColor.rgb * mix(1.0, light, uLit), aColor.a);
    }`;
  const FRAGMENT = `
    precision mediump float;
    varying vec4 vColor;
    void main() { gl_FragColor = vColor; }`;

  class View3D {
    constructor(canvas) {
      this.canvas = canvas;
      const gl = canvas.getContext('webgl', { antialias: true, preserveDrawingBuffer: true });
      if (!gl) {
        canvas.replaceWith(Object.assign(document.createElement('p'), { className: 'note', textContent: 'WebGL is not available in this browser.' }));
        return;
      }
      this.gl = gl;
      const shader = (type, text) => {
        const s = gl.createShader(type);
        gl.shaderSource(s, text);
        gl.compileShader(s);
        if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
        return s;
      };
      const program = gl.createProgram();
      gl.attachShader(program, shader(gl.VERTEX_SHADER, VERTEX));
      gl.attachShader(program, shader(gl.FRAGMENT_SHADER, FRAGMENT));
      gl.linkProgram(program);
      if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
      this.program = program;
      this.loc = {
        pos: gl.getAttribLocation(program, 'aPos'),
        normal: gl.getAttribLocation(program, 'aNormal'),
        color: gl.getAttribLocation(program, 'aColor'),
        mvp: gl.getUniformLocation(program, 'uMvp'),
        lit: gl.getUniformLocation(program, 'uLit'),
      };
      this.triangles = { buffer: gl.createBuffer(), count: 0 };
      this.lines = { buffer: gl.createBuffer(), count: 0 };
      this.orbit = { yaw: (225 * Math.PI) / 180, pitch: (38 * Math.PI) / 180, distance: 8 };
      this.listen();
      new ResizeObserver(() => this.draw()).observe(canvas);
    }

    listen() {
      const c = this.canvas;
      let last = null;
      c.addEventListener('pointerdown', (e) => { last = [e.clientX, e.clientY]; c.setPointerCapture(e.pointerId); });
      c.addEventListener('pointerup', () => { last = null; });
      c.addEventListener('pointermove', (e) => {
        if (!last) return;
        this.orbit.yaw -= (e.clientX - last[0]) * 0.01;
        this.orbit.pitch = Math.min(1.55, Math.max(0.05, this.orbit.pitch + (e.clientY - last[1]) * 0.01));
        last = [e.clientX, e.clientY];
        this.draw();
      });
      c.addEventListener('wheel', (e) => {
        e.preventDefault();
        this.orbit.distance = Math.min(this.maxDistance, Math.max(0.5, this.orbit.distance * (e.deltaY > 0 ? 1.12 : 1 / 1.12)));
        this.draw();
      }, { passive: false });
    }

    // room: RoomRecord; turn: TurnRecord; focus: Set of ids to emphasise.
    setScene(room, turn, focus) {
      if (!this.gl) return;
      const [L, W, H] = room.size;
      const tris = [];
      const lines = [];
      pushBox(tris, [L / 2, W / 2, -0.01], [L + 0.16, W + 0.16, 0.02], 0, [0.93, 0.9, 0.84]);
      const skirt = Math.min(0.3, H);
      const wall = [0.78, 0.78, 0.8];
      pushBox(tris, [L / 2, -0.04, skirt / 2], [L + 0.16, 0.08, skirt], 0, wall);
      pushBox(tris, [L / 2, W + 0.04, skirt / 2], [L + 0.16, 0.08, skirt], 0, wall);
      pushBox(tris, [-0.04, W / 2, skirt / 2], [0.08, W, skirt], 0, wall);
      pushBox(tris, [L + 0.04, W / 2, skirt / 2], [0.08, W, skirt], 0, wall);
      pushEdges(lines, [L / 2, W / 2, H / 2], [L, W, H], 0, [0.55, 0.57, 0.62]);
      window.ReplayPlan.items(room, turn).forEach((it) => {
        const kind = window.ReplayPlan.mainKind(it.marks);
        let color = hsl(window.ReplayPlan.categoryHue(it.category), 0.45, 0.62);
        if (kind) color = mix(color, hex(window.ReplayPlan.COLOR[kind]), 0.55);
        pushBox(tris, it.pose.position, it.size, it.pose.rotation, color, mix(color, [0.1, 0.1, 0.12], 0.35));
        if (kind || (focus && focus.has(it.id))) {
          const edge = kind ? hex(window.ReplayPlan.COLOR[kind]) : [0.15, 0.39, 0.92];
          pushEdges(lines, it.pose.position, it.size.map((v) => v + 0.02), it.pose.rotation, edge);
        }
      });
      const gl = this.gl;
      const upload = (target, data) => {
        gl.bindBuffer(gl.ARRAY_BUFFER, target.buffer);
        gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(data), gl.STATIC_DRAW);
        target.count = data.length / FLOATS;
      };
      upload(this.triangles, tris);
      upload(this.lines, lines);
      const size = Math.hypot(L, W, H);
      if (!this.room || this.room.join() !== room.size.join()) this.orbit.distance = 1.5 * size;
      this.maxDistance = 5 * size;
      this.room = room.size;
      this.verify = true;
      this.draw();
    }

    draw() {
      if (!this.gl || this.pending) return;
      this.pending = requestAnimationFrame(() => { this.pending = null; this.paint(); });
    }

    paint() {
      const gl = this.gl;
      if (!this.room) return;
      const dpr = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(this.canvas.clientWidth * dpr));
      const h = Math.max(1, Math.round(this.canvas.clientHeight * dpr));
      if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
      gl.viewport(0, 0, w, h);
      gl.clearColor(...BACKGROUND);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      gl.useProgram(this.program);
      const [L, W, H] = this.room;
      const target = [L / 2, W / 2, H * 0.25];
      const { yaw, pitch, distance } = this.orbit;
      const eye = [target[0] + distance * Math.cos(pitch) * Math.cos(yaw),
        target[1] + distance * Math.cos(pitch) * Math.sin(yaw), target[2] + distance * Math.sin(pitch)];
      const mvp = multiply(perspective(0.87, w / h, 0.05, distance * 4 + 10), lookAt(eye, target, [0, 0, 1]));
      gl.uniformMatrix4fv(this.loc.mvp, false, new Float32Array(mvp));
      const bind = (target) => {
        gl.bindBuffer(gl.ARRAY_BUFFER, target.buffer);
        const stride = FLOATS * 4;
        gl.enableVertexAttribArray(this.loc.pos);
        gl.vertexAttribPointer(this.loc.pos, 3, gl.FLOAT, false, stride, 0);
        gl.enableVertexAttribArray(this.loc.normal);
        gl.vertexAttribPointer(this.loc.normal, 3, gl.FLOAT, false, stride, 12);
        gl.enableVertexAttribArray(this.loc.color);
        gl.vertexAttribPointer(this.loc.color, 4, gl.FLOAT, false, stride, 24);
      };
      gl.uniform1f(this.loc.lit, 1);
      bind(this.triangles);
      gl.drawArrays(gl.TRIANGLES, 0, this.triangles.count);
      gl.uniform1f(this.loc.lit, 0);
      bind(this.lines);
      gl.drawArrays(gl.LINES, 0, this.lines.count);
      if (this.verify) this.checkDrawn(w, h);
    }

    // Reads the frame back once per scene and records whether anything but the background was
    // drawn: the page's tests read `window.__replay3dDrawn`, and a blank view says so.
    checkDrawn(w, h) {
      this.verify = false;
      const gl = this.gl;
      const pixels = new Uint8Array(w * h * 4);
      gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
      const bg = BACKGROUND.map((v) => Math.round(v * 255));
      let drawn = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        if (Math.abs(pixels[i] - bg[0]) + Math.abs(pixels[i + 1] - bg[1]) + Math.abs(pixels[i + 2] - bg[2]) > 24) drawn++;
      }
      this.canvas.dataset.drawnPixels = String(drawn);
      if (drawn > 0.01 * w * h) window.__replay3dDrawn = true;
    }
  }

  window.ReplayView3D = View3D;
})();
