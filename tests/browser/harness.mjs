// Helpers of the browser test: a throwaway JupyterLab server, headless Chromium,
// stepping through reveal.js slides, and checks of what a slide shows.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const LAB_PYTHON = resolve(ROOT, process.env.LAB_PYTHON || '.venv/bin/python');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SLIDES_DIR = resolve(ROOT, process.env.SLIDES_DIR || 'build/slides');
export const SHOTS = resolve(ROOT, process.env.SCREENSHOTS_DIR || 'build/screenshots');

// Text that a widget shows when the page has no widget manager for it.
export const WIDGET_REPR = /^\s*(VBox|HBox|Box|IntSlider|FloatSlider|ToggleButtons|Dropdown|Output|HTML|interactive)\(/m;

export function python(args, options = {}) {
  return execFileSync(LAB_PYTHON, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, ...options });
}

async function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

// JupyterLab on a free loopback port with a random token, serving `root`, with its own
// settings, workspace and runtime folders (nothing of the user's is read or written).
export async function startLab(root) {
  const port = await freePort();
  const token = randomBytes(24).toString('hex');
  const home = mkdtempSync(join(tmpdir(), 'seglib-lab-'));
  const settings = join(home, 'settings', '@jupyterlab', 'apputils-extension');
  mkdirSync(settings, { recursive: true });
  writeFileSync(join(settings, 'notification.jupyterlab-settings'), JSON.stringify({ fetchNews: 'false', checkForUpdates: false }));
  mkdirSync(SHOTS, { recursive: true });
  const log = join(SHOTS, 'jupyterlab.log');
  const out = openSync(log, 'w');
  const child = spawn(LAB_PYTHON, [
    '-m', 'jupyterlab', '--no-browser', '--allow-root',
    '--ServerApp.ip=127.0.0.1', `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
    `--IdentityProvider.token=${token}`, `--ServerApp.root_dir=${root}`,
    `--LabApp.user_settings_dir=${join(home, 'settings')}`, `--LabApp.workspaces_dir=${join(home, 'workspaces')}`,
    '--LabApp.news_url=None', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
  ], {
    cwd: root, detached: true, stdio: ['ignore', out, out],
    env: { ...process.env, JUPYTER_RUNTIME_DIR: join(home, 'runtime'), JUPYTER_CONFIG_DIR: join(home, 'config'), SEGLIB_PROFILE: 'cpu' },
  });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`JupyterLab exited with ${child.exitCode}; see ${log}`);
    try {
      const reply = await fetch(`${base}/api/status?token=${token}`);
      if (reply.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`JupyterLab did not answer on ${base} within 120 s; see ${log}`);
    await new Promise((ok) => setTimeout(ok, 500));
  }
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((ok) => child.once('exit', ok));
    process.kill(-child.pid, 'SIGTERM');
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ } }, 15_000);
    await exited;
    clearTimeout(timer);
  };
  return { base, token, root, log, stop };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
  });
}

// Current reveal.js position: index among the leaf <section>s, and hidden fragments left.
export async function slideState(page) {
  return page.evaluate(() => {
    const leaves = [...document.querySelectorAll('.reveal .slides section')].filter((s) => !s.querySelector('section'));
    const present = leaves.find((s) => s.classList.contains('present'));
    return {
      index: leaves.indexOf(present),
      total: leaves.length,
      hiddenFragments: present ? present.querySelectorAll('.fragment:not(.visible)').length : -1,
    };
  });
}

// What the present slide shows inside the viewport: text, and images or canvases with a size.
export async function visibleContent(page) {
  return page.evaluate(() => {
    const leaves = [...document.querySelectorAll('.reveal .slides section')].filter((s) => !s.querySelector('section'));
    const present = leaves.find((s) => s.classList.contains('present'));
    if (!present) return { text: '', media: 0, onScreen: false };
    const inView = (el) => {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth
        && style.visibility !== 'hidden' && style.display !== 'none' && Number(style.opacity) > 0;
    };
    const media = [...present.querySelectorAll('img, svg, canvas')].filter(inView).length;
    const texts = [...present.querySelectorAll('p, li, h1, h2, h3, h4, td, th, pre, .cm-line, .jp-OutputArea-output')]
      .filter((el) => inView(el) && el.innerText.trim().length > 0);
    return { text: present.innerText.trim().slice(0, 120), media, onScreen: texts.length > 0 || media > 0 };
  });
}

// How far the present slide's content reaches below the bottom of the window, in px (0: it fits).
// Scrolled content counts: a slide that needs its scroll bar to be read overflows.
export async function slideOverflow(page) {
  return page.evaluate(() => {
    const leaves = [...document.querySelectorAll('.reveal .slides section')].filter((s) => !s.querySelector('section'));
    const present = leaves.find((s) => s.classList.contains('present'));
    if (!present) return 0;
    const shown = [...present.querySelectorAll('*')].filter((el) => {
      const style = getComputedStyle(el);
      return style.display !== 'none' && style.visibility !== 'hidden' && Number(style.opacity) > 0
        && el.getBoundingClientRect().height > 0;
    });
    let bottom = 0;
    for (const el of shown) {
      let scrolled = 0; // scroll offsets of the scrolled ancestors inside the slide
      for (let a = el.parentElement; a && a !== present.parentElement; a = a.parentElement) scrolled += a.scrollTop;
      bottom = Math.max(bottom, el.getBoundingClientRect().bottom + scrolled);
    }
    return Math.max(0, Math.round(bottom - innerHeight));
  });
}

// Press Space until the last fragment of the last slide; call `visit(index)` once per slide
// (on arrival) and `each(index)` in every state (each fragment revealed).
export async function stepThrough(page, visit, { settle = 250, each = null } = {}) {
  const seen = new Set();
  let state = await slideState(page);
  for (let presses = 0; presses < 10 * state.total + 20; presses++) {
    if (!seen.has(state.index)) {
      seen.add(state.index);
      await visit(state.index, state);
    }
    if (each) await each(state.index, state);
    if (state.index === state.total - 1 && state.hiddenFragments === 0) break;
    await page.keyboard.press('Space');
    await page.waitForTimeout(settle);
    state = await slideState(page);
  }
  return seen;
}

// Run `code` in the kernel of the notebook session at `path`, through the kernel's websocket.
export async function runInKernel(page, lab, path, code, timeout = 240_000) {
  return page.evaluate(async ({ base, token, path, code, timeout }) => {
    const deadline = Date.now() + timeout;
    let session;
    while (!session) {
      const sessions = await (await fetch(`${base}/api/sessions?token=${token}`)).json();
      session = sessions.find((s) => s.path === path && s.kernel);
      if (!session) {
        if (Date.now() > deadline) throw new Error(`no kernel session for ${path}`);
        await new Promise((ok) => setTimeout(ok, 500));
      }
    }
    const id = `prelude-${Math.random().toString(16).slice(2)}`;
    const socket = new WebSocket(`${base.replace('http', 'ws')}/api/kernels/${session.kernel.id}/channels?token=${token}&session_id=${id}`);
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`the prelude of ${path} did not finish`)), timeout);
      socket.onerror = () => fail(new Error('kernel websocket error'));
      socket.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.channel === 'shell' && msg.parent_header?.msg_id === id) {
          clearTimeout(timer);
          socket.close();
          ok(msg.content);
        }
      };
      socket.onopen = () => socket.send(JSON.stringify({
        header: { msg_id: id, msg_type: 'execute_request', username: 'browser-test', session: id, version: '5.3', date: new Date().toISOString() },
        parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      }));
    });
  }, { base: lab.base, token: lab.token, path, code, timeout });
}

export async function shutdownSessions(lab) {
  const sessions = await (await fetch(`${lab.base}/api/sessions?token=${lab.token}`)).json();
  for (const s of sessions) {
    await fetch(`${lab.base}/api/sessions/${s.id}?token=${lab.token}`, { method: 'DELETE' });
  }
}

// A fingerprint of what an output area shows (text and images), to see it change.
export async function outputSignature(area) {
  return area.evaluate((el) => el.innerText + [...el.querySelectorAll('img')].map((img) => `${img.src.length}:${img.src.slice(-64)}`).join('|'));
}

// Drag the first slider handle in `scope` by a third of its track (leftwards when it sits on the right).
export async function dragFirstSlider(page, scope) {
  const handle = scope.locator('.noUi-handle, .ui-slider-handle').first();
  const track = scope.locator('.noUi-base, .ui-slider').first();
  await handle.scrollIntoViewIfNeeded(); // a widget low on a 720-pixel slide may start below the fold
  const h = await handle.boundingBox();
  const t = await track.boundingBox();
  if (!h || !t) throw new Error('no slider handle on screen');
  const x = h.x + h.width / 2;
  const y = h.y + h.height / 2;
  const direction = x > t.x + 0.6 * t.width ? -1 : 1;
  await page.mouse.move(x, y);
  await page.mouse.down();
  for (let step = 1; step <= 10; step++) {
    await page.mouse.move(x + direction * step * (t.width / 30), y);
  }
  await page.mouse.up();
}

export async function waitFor(predicate, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout / 1000} s waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 250));
  }
}
