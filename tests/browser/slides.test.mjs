// Browser test (make test-browser): every notebook in JupyterLab's RISE slideshow and as
// built reveal.js HTML, in headless Chromium. Screenshots go to build/screenshots/.
//
// RISE: every slide shows something on screen, the slide count equals the notebook's
// slide and subslide cells, and each widget cell (plus a probe notebook with an
// IntSlider and the convolution explorer) renders as widgets, not as text, and reacts
// to a mouse drag. reveal.js HTML (make slides): same slide count, speaker notes kept,
// math typeset, saved widgets drawn, and no request leaves the machine but images.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import {
  ROOT, SHOTS, SLIDES_DIR, WIDGET_REPR, dragFirstSlider, launchBrowser, outputSignature, python, runInKernel,
  shutdownSessions, slideOverflow, slideState, startLab, stepThrough, visibleContent, waitFor,
} from './harness.mjs';

const SITE_DIR = join(ROOT, 'build', 'site');
// Console errors that are understood and harmless; any other fails the run (last test).
const KNOWN_CONSOLE_ERRORS = [
  // nbgrader's and Notebook 7's JupyterLab extensions need the full JupyterLab shell, which
  // RISE's page lacks: they fail to activate there, and nothing of the slideshow needs them
  /The getter for the shared module is not a function/,
  /Cannot access '\w+' before initialization/,
  // RISE asks for an optional stylesheet per notebook (NN_name.css); the course styles all
  // slides with notebooks/rise.css, whose failure to load is an error
  /Refused to apply style from '[^']*\/files\/notebooks\/(\d\d_\w+|widget_probe)\.css'/,
  // the Open-in-Colab badge's image, on a machine without a network
  /Failed to load resource: net::ERR_NAME_NOT_RESOLVED/,
];
const OVERFLOW_TOLERANCE = 8; // px below the window's bottom edge that still count as fitting
const overflowing = [];

const NOTEBOOKS = (process.env.NOTEBOOKS || '').split(/\s+/).filter(Boolean);
const serverRoot = join(ROOT, 'build', 'browser-root');
rmSync(serverRoot, { recursive: true, force: true });
const sources = NOTEBOOKS.length ? NOTEBOOKS : python(['-c', 'import glob; print(" ".join(sorted(glob.glob("notebooks/*.ipynb"))))']).trim().split(' ');
const plans = JSON.parse(python(['tests/browser/plan.py', serverRoot, ...sources]));
const stem = (name) => name.replace(/\.ipynb$/, '');
const pad = (i) => String(i + 1).padStart(2, '0');

let browser;
let lab;
const consoleErrors = [];

before(async () => {
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  browser = await launchBrowser();
  lab = await startLab(serverRoot);
});

after(async () => {
  await browser?.close();
  await lab?.stop();
  console.log(`RISE slides that overflow 1280x720: ${overflowing.length}${overflowing.length ? `\n  ${overflowing.join('\n  ')}` : ''}`);
  if (consoleErrors.length) {
    console.log(`browser console errors, first 10 of ${consoleErrors.length}:\n  ${consoleErrors.slice(0, 10).join('\n  ')}`);
  }
});

async function newPage(viewport = { width: 1280, height: 800 }) {
  const page = await browser.newPage({ viewport });
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${page.url().split('?')[0]}: ${m.text().slice(0, 160)}`); });
  page.on('pageerror', (e) => consoleErrors.push(`${page.url().split('?')[0]}: page error ${String(e).slice(0, 160)}`));
  return page;
}

// Run a widget cell of the present RISE slide, check it shows widgets and reacts to a drag.
async function checkWidgetCell(page, plan, cell, shot) {
  const present = page.locator('.reveal .slides section.present:not(.stack)');
  const codeCell = present.locator('.jp-CodeCell').filter({ hasText: cell.source.split('\n').at(-1).trim() }).first();
  if (cell.prelude) {
    const reply = await runInKernel(page, lab, plan.path, cell.prelude);
    assert.equal(reply.status, 'ok', `prelude of cell ${cell.index} of ${plan.name}: ${reply.ename}: ${reply.evalue}`);
  }
  // A widget cell may be a fragment of its slide: reveal the slide's fragments until it shows
  // (while it is hidden the slide still has a hidden fragment, so Space does not leave the slide).
  for (let presses = 0; presses < 20 && !(await codeCell.isVisible()); presses++) {
    await page.keyboard.press('Space');
    await page.waitForTimeout(250);
  }
  await codeCell.locator('.cm-content').click();
  await page.keyboard.press('Control+Enter'); // run in place (Shift+Enter would move on)
  await page.keyboard.press('Escape'); // back to command mode, so Space moves the slides again
  const area = codeCell.locator('.jp-Cell-outputArea');
  // JupyterLab renders a traceback with the stderr mime type.
  const errors = area.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    .filter({ hasText: /Traceback|Error/ });
  await waitFor(async () => (await area.locator('.jupyter-widgets').count()) + (await errors.count()) > 0
    && !(await codeCell.locator('.jp-InputPrompt').innerText()).includes('*'), 240_000, `cell ${cell.index} of ${plan.name} to show its widgets`);
  await page.waitForTimeout(1000);
  const text = await area.innerText();
  assert.equal(await errors.count(), 0, `cell ${cell.index} of ${plan.name} failed:\n${text}`);
  assert.doesNotMatch(text, WIDGET_REPR, `cell ${cell.index} of ${plan.name} shows a widget as text, not as a widget`);
  assert.ok(await area.locator('.widget-slider, .jupyter-widgets.widget-inline-hbox').count() > 0, 'no slider widget rendered');
  await page.screenshot({ path: `${shot}-widget-before.png` });
  const readout = area.locator('.widget-readout').first();
  const valueBefore = await readout.innerText();
  const before = await outputSignature(area);
  await dragFirstSlider(page, area);
  await waitFor(async () => (await outputSignature(area)) !== before, 60_000, `cell ${cell.index} of ${plan.name} to react to the drag`);
  assert.notEqual(await readout.innerText(), valueBefore, 'the dragged slider did not change its value');
  await page.waitForTimeout(1000);
  await page.screenshot({ path: `${shot}-widget-after.png` });
  return { before: valueBefore, after: await readout.innerText() };
}

describe('RISE slideshow in JupyterLab', () => {
  for (const plan of plans) {
    test(`${plan.name}: every slide shows content; widgets render and react`, async () => {
      const page = await newPage({ width: 1280, height: 720 }); // a projector's 720p
      const overflow = new Map();
      try {
        await page.goto(`${lab.base}/rise/${plan.path}?token=${lab.token}`);
        await page.locator('.reveal .slides section.present').first().waitFor({ timeout: 120_000 });
        await page.waitForTimeout(2000);
        const { total } = await slideState(page);
        assert.equal(total, plan.slides, `RISE shows ${total} slides, the notebook has ${plan.slides} slide/subslide cells`);
        const pending = [...plan.widget_cells];
        const checked = [];
        const seen = await stepThrough(page, async (index) => {
          const shot = join(SHOTS, `rise-${stem(plan.name)}-${pad(index)}`);
          const content = await visibleContent(page);
          await page.screenshot({ path: `${shot}.png` });
          assert.ok(content.onScreen, `RISE slide ${index + 1} of ${plan.name} shows nothing on screen (${content.text})`);
          const present = page.locator('.reveal .slides section.present:not(.stack)');
          for (const cell of [...pending]) {
            const last = cell.source.split('\n').at(-1).trim();
            if (await present.locator('.jp-CodeCell').filter({ hasText: last }).count()) {
              checked.push({ index: cell.index, ...(await checkWidgetCell(page, plan, cell, shot)) });
              pending.splice(pending.indexOf(cell), 1);
            }
          }
        }, { each: async (index) => {
          const px = await slideOverflow(page);
          if (px > OVERFLOW_TOLERANCE && !overflow.has(index)) {
            await page.screenshot({ path: join(SHOTS, `rise-${stem(plan.name)}-${pad(index)}-overflow.png`) });
          }
          if (px > OVERFLOW_TOLERANCE) overflow.set(index, Math.max(overflow.get(index) || 0, px));
        } });
        assert.equal(seen.size, plan.slides, `stepped through ${seen.size} of ${plan.slides} slides`);
        assert.deepEqual(pending.map((c) => c.index), [], 'widget cells not found on any slide');
        const over = [...overflow].map(([index, px]) => `${index + 1} (+${px} px)`);
        overflowing.push(...over.map((o) => `${plan.name} slide ${o}`));
        console.log(`${plan.name}: ${plan.slides} RISE slides, ${over.length} overflow 1280x720`
          + `${over.length ? `: ${over.join(', ')}` : ''}`
          + `${checked.map((c) => `; cell ${c.index} slider ${c.before} -> ${c.after}`).join('')}`);
      } finally {
        await page.close();
        await shutdownSessions(lab);
      }
    });
  }
});

describe('JupyterLab notebook view', () => {
  for (const plan of plans.filter((p) => p.name !== 'widget_probe.ipynb')) {
    test(`${plan.name} opens in JupyterLab`, async () => {
      const page = await newPage();
      try {
        await page.goto(`${lab.base}/lab/tree/${plan.path}?token=${lab.token}`);
        const firstCell = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell').first();
        await firstCell.waitFor({ timeout: 120_000 });
        await waitFor(async () => /Idle/.test(await page.locator('.jp-StatusBar-Widget, #jp-main-statusbar').first().innerText()), 120_000, 'the kernel to be idle');
        await page.waitForTimeout(1500);
        await page.screenshot({ path: join(SHOTS, `lab-${stem(plan.name)}.png`) });
        assert.ok((await firstCell.innerText()).trim().length > 0, 'the first cell is empty');
      } finally {
        await page.close();
        await shutdownSessions(lab);
      }
    });
  }
});

describe('reveal.js HTML from make slides (offline)', () => {
  const probeSlides = join(ROOT, 'build', 'browser-probe-slides');
  before(() => {
    // the probe notebook, executed, so that its saved widget state goes into the HTML
    python(['-m', 'seglib.tools.slides', '--execute', '--out', probeSlides, join(serverRoot, 'notebooks', 'widget_probe.ipynb')]);
  });

  for (const plan of plans) {
    test(`${plan.name}: slide count, notes, math, widgets, no network`, async () => {
      const dir = plan.name === 'widget_probe.ipynb' ? probeSlides : SLIDES_DIR;
      const file = join(dir, `${stem(plan.name)}.slides.html`);
      assert.ok(existsSync(file), `${file} is missing: run make slides`);
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const external = [];
      await context.route('**/*', (route) => {
        const request = route.request();
        if (request.url().startsWith('file:')) return route.continue();
        external.push(`${request.resourceType()} ${request.url()}`);
        return route.abort();
      });
      const page = await context.newPage();
      page.on('pageerror', (e) => consoleErrors.push(`${file}: page error ${String(e).slice(0, 160)}`));
      try {
        await page.goto(pathToFileURL(file).href);
        await page.locator('.reveal.ready').waitFor({ timeout: 60_000 });
        const { total } = await slideState(page);
        assert.equal(total, plan.slides, `the HTML has ${total} slides, the notebook ${plan.slides} slide/subslide cells`);
        assert.equal(await page.locator('aside.notes').count(), plan.notes, 'speaker notes lost');
        if (plan.math) {
          await page.locator('.MathJax_CHTML, .MathJax').first().waitFor({ state: 'attached', timeout: 60_000 });
        }
        if (plan.widget_cells.length) {
          await page.locator('.widget-slider').first().waitFor({ state: 'attached', timeout: 60_000 });
          assert.ok(await page.locator('.seglib-static-widget').count() >= plan.widget_cells.length, 'no note that the widgets are static');
        }
        const seen = await stepThrough(page, async (index) => {
          await page.waitForTimeout(300);
          const content = await visibleContent(page);
          await page.screenshot({ path: join(SHOTS, `reveal-${stem(plan.name)}-${pad(index)}.png`) });
          assert.ok(content.onScreen, `reveal.js slide ${index + 1} of ${plan.name} shows nothing on screen (${content.text})`);
        });
        assert.equal(seen.size, plan.slides);
        const notImages = external.filter((r) => !r.startsWith('image '));
        assert.deepEqual(notImages, [], 'the slides asked the network for scripts or styles');
        console.log(`${plan.name}: ${plan.slides} reveal.js slides offline${external.length ? ` (${external.length} external image(s) left out)` : ''}`);
      } finally {
        await context.close();
      }
    });
  }

  test('index.html links every notebook', async () => {
    const page = await newPage();
    try {
      await page.goto(pathToFileURL(join(SLIDES_DIR, 'index.html')).href);
      const links = await page.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      for (const plan of plans.filter((p) => p.name !== 'widget_probe.ipynb')) {
        assert.ok(links.includes(`${stem(plan.name)}.slides.html`), `index.html does not link ${plan.name}`);
      }
    } finally {
      await page.close();
    }
  });
});

describe('course site from make site (offline)', () => {
  const pages = plans.filter((p) => p.name !== 'widget_probe.ipynb');
  for (const plan of pages) {
    test(`${plan.name}: its page renders with every figure, nothing from the network`, async () => {
      const file = join(SITE_DIR, `${stem(plan.name)}.html`);
      assert.ok(existsSync(file), `${file} is missing: run make site`);
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const external = [];
      await context.route('**/*', (route) => {
        if (route.request().url().startsWith('file:') || route.request().url().startsWith('data:')) return route.continue();
        external.push(`${route.request().resourceType()} ${route.request().url()}`);
        return route.abort();
      });
      const page = await context.newPage();
      page.on('pageerror', (e) => consoleErrors.push(`${file}: page error ${String(e).slice(0, 160)}`));
      try {
        await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
        const images = await page.locator('.jp-OutputArea-output img').evaluateAll(
          (imgs) => imgs.map((img) => ({ ok: img.complete && img.naturalWidth > 0, width: img.naturalWidth })));
        assert.ok(images.length > 0, 'the page shows no figure');
        assert.deepEqual(images.filter((i) => !i.ok), [], 'figures that did not load');
        assert.ok((await page.locator('h1').first().innerText()).trim().length > 0, 'no title');
        await page.screenshot({ path: join(SHOTS, `site-${stem(plan.name)}.png`) });
        assert.deepEqual(external, [], 'the page asked the network for something');
        console.log(`${plan.name}: site page with ${images.length} figures offline`);
      } finally {
        await context.close();
      }
    });
  }

  test('the site index links every notebook with its learning goals', async () => {
    const page = await newPage();
    try {
      await page.goto(pathToFileURL(join(SITE_DIR, 'index.html')).href);
      const links = await page.locator('h2 a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
      for (const plan of pages) assert.ok(links.includes(`${stem(plan.name)}.html`), `index.html does not link ${plan.name}`);
      assert.ok(await page.locator('section li').count() >= 2 * pages.length, 'learning goals missing');
      await page.screenshot({ path: join(SHOTS, 'site-index.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });
});

describe('browser console and slide fit', () => {
  test('no RISE slide overflows a 1280x720 window', () => {
    // counted on every fragment of every slide above; screenshots: build/screenshots/*-overflow.png
    assert.deepEqual(overflowing.slice(0, 20), [], `${overflowing.length} RISE slides overflow 1280x720`);
  });

  test('no console error but the known ones', () => {
    const unexpected = consoleErrors.filter((e) => !KNOWN_CONSOLE_ERRORS.some((known) => known.test(e)));
    assert.deepEqual(unexpected.slice(0, 10), [], `${unexpected.length} unexpected console errors`);
  });
});
