// The web UI in headless Chromium (Debian's), driven by playwright-core.
//
//   node ui.mjs BASE_URL STORE_DIR OUT_DIR
//
// BASE_URL serves html/ at / and the podgen API; STORE_DIR is its
// podgen_store (the library is seeded there); screenshots go to OUT_DIR.
// Each check prints one line: UI {"ok":true|false,"name":...,"diag":...};
// t/17-ui.t turns them into TAP.  Exit status 0 when all passed.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';

const [base, store, outdir] = process.argv.slice(2);
if (!base || !store || !outdir) {
    console.error('usage: node ui.mjs BASE_URL STORE_DIR OUT_DIR');
    process.exit(2);
}
fs.mkdirSync(outdir, { recursive: true });

const SEED = 10000;
const ROW_BOUND = 100;
const t0 = Date.now();
let failed = 0;
let checks = 0;

function check(ok, name, diag) {
    checks++;
    if (!ok) {
        failed++;
    }
    const line = { ok: Boolean(ok), name };
    if (!ok && diag !== undefined) {
        line.diag = typeof diag === 'string' ? diag : JSON.stringify(diag);
    }
    console.log('UI ' + JSON.stringify(line));
    return Boolean(ok);
}

function note(text) {
    console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${text}`);
}

const sleep = ms => new Promise(r => setTimeout(r, ms));

async function until(fn, { timeout = 10000, every = 100 } = {}) {
    const end = Date.now() + timeout;
    for (;;) {
        const v = await fn();
        if (v) {
            return v;
        }
        if (Date.now() > end) {
            return v;
        }
        await sleep(every);
    }
}

async function shot(page, name) {
    await page.screenshot({ path: path.join(outdir, name), fullPage: false });
}

const browser = await chromium.launch({
    executablePath: process.env.PODGEN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required']
});

// ---- what the page asks of the server -----------------------------------

const STATUS_RE = /^\/v1\/podcasts\/(pod_[0-9a-f]{20})$/;
const net = {
    inflight: new Map(),        // job id -> status requests in flight
    maxInflight: 0,
    polls: new Map(),           // job id -> [{ t, etag, wait }]
    lists: [],                  // list request URLs
    pageErrors: []
};

function watch(page) {
    const isStatus = (r) => {
        const u = new URL(r.url());
        const m = STATUS_RE.exec(u.pathname);
        return m && r.method() === 'GET' ? m[1] : null;
    };
    page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname === '/v1/podcasts' && r.method() === 'GET') {
            net.lists.push(u.search);
        }
        const id = isStatus(r);
        if (!id) {
            return;
        }
        const n = (net.inflight.get(id) || 0) + 1;
        net.inflight.set(id, n);
        net.maxInflight = Math.max(net.maxInflight, n);
        const list = net.polls.get(id) || [];
        list.push({ t: Date.now(), etag: r.headers()['if-none-match'] || null,
                    wait: u.searchParams.get('wait') });
        net.polls.set(id, list);
    });
    const done = (r) => {
        const id = isStatus(r);
        if (id) {
            net.inflight.set(id, Math.max(0, (net.inflight.get(id) || 0) - 1));
        }
    };
    page.on('requestfinished', done);
    page.on('requestfailed', done);
    page.on('pageerror', (e) => net.pageErrors.push(String(e)));
}

async function submitCreate(page) {
    const [resp] = await Promise.all([
        page.waitForResponse(r => new URL(r.url()).pathname === '/v1/podcasts'
                                  && r.request().method() === 'POST'),
        page.click('#create-submit')
    ]);
    return resp;
}

async function currentLine(page) {
    return page.evaluate(() => {
        const b = document.querySelector('#transcript button[aria-current="time"]');
        return b ? Number(b.dataset.index) : -1;
    });
}

async function audioTime(page) {
    return page.evaluate(() => document.getElementById('audio').currentTime);
}

// ---- the checks ------------------------------------------------------------

let exitCode = 0;

try {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    watch(page);

    // 1. create a podcast through the form and follow it
    note('create');
    await page.goto(base + '/');
    await page.waitForSelector('#host-list li.host >> nth=1');
    await page.waitForSelector('select.host-voice option[value="kal"]', { state: 'attached' });
    check(await page.locator('#host-list li.host').count() === 2, 'create: two hosts by default');
    await page.fill('#topic', 'The history of tea');
    await page.selectOption('#length', 'short');
    await page.selectOption('#host-list li.host >> nth=1 >> select.host-voice', 'echo');
    await shot(page, 'create.png');

    const [speech] = await Promise.all([
        page.waitForResponse(r => new URL(r.url()).pathname === '/v1/audio/speech'),
        page.click('#host-list li.host >> nth=1 >> button.preview')
    ]);
    const previewOk = await until(() => page.$eval('#host-list li.host >> nth=1',
        li => !li.querySelector('button.preview').disabled), { timeout: 5000 });
    check(speech.status() === 200 && speech.request().postDataJSON().voice === 'echo'
          && previewOk && await page.$eval('#create-error', e => e.textContent === ''),
          'create: "Preview voice" speaks with the chosen voice',
          { status: speech.status(), error: await page.$eval('#create-error', e => e.textContent) });

    let resp = await submitCreate(page);
    check(resp.status() === 202, 'create: POST /v1/podcasts answers 202', resp.status());
    const job = await resp.json();
    const id = job.id;
    const card = page.locator(`#jobs-list li.job[data-id="${id}"]`);
    await card.waitFor({ timeout: 5000 });
    check(await card.locator('progress').isVisible(), 'create: the job shows a progress bar');
    const finished = await page.waitForSelector(
        `#jobs-list li.job[data-id="${id}"][data-status="completed"]`,
        { timeout: 60000 }).then(() => true, () => false);
    check(finished, 'create: the job completes within 60 s',
          await card.getAttribute('data-status'));
    check(/Ready/.test(await card.locator('.status').textContent()),
          'create: the card says it is ready');
    note(`job ${id} completed`);

    // 1b. following: long polls with If-None-Match, nothing while hidden
    note('follow a longer job');
    const source = fs.readFileSync(new URL('../data/source-history.txt', import.meta.url), 'utf8');
    await page.fill('#topic', '');
    await page.fill('#source', source);
    await page.fill('#title', 'A longer one');
    await page.selectOption('#length', 'long');
    resp = await submitCreate(page);
    check(resp.status() === 202, 'follow: a long job is accepted', resp.status());
    const id2 = (await resp.json()).id;
    const longPolls = await until(() => (net.polls.get(id2) || [])
        .filter(p => p.etag && p.wait).length >= 2, { timeout: 20000 });
    check(longPolls, 'follow: long polls (?wait=) with If-None-Match',
          net.polls.get(id2));
    const progressSeen = await page.$eval(`li.job[data-id="${id2}"] progress`,
                                          p => ({ value: p.value, max: p.max }));
    note(`progress seen: ${JSON.stringify(progressSeen)}`);

    await page.evaluate(() => {
        Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
        Object.defineProperty(document, 'visibilityState', { configurable: true,
                                                             get: () => 'hidden' });
        document.dispatchEvent(new Event('visibilitychange'));
    });
    const aborted = await until(() => (net.inflight.get(id2) || 0) === 0, { timeout: 3000 });
    const before = (net.polls.get(id2) || []).length;
    await sleep(1500);
    const hiddenState = await page.$eval(`li.job[data-id="${id2}"]`, e => e.dataset.status);
    check(aborted && (net.polls.get(id2) || []).length === before,
          'follow: no polling while the page is hidden',
          { aborted, before, after: (net.polls.get(id2) || []).length });
    await page.evaluate(() => {
        delete document.hidden;
        delete document.visibilityState;
        document.dispatchEvent(new Event('visibilitychange'));
    });
    const resumed = await page.waitForSelector(
        `li.job[data-id="${id2}"][data-status="completed"]`,
        { timeout: 40000 }).then(() => true, () => false);
    check(resumed, 'follow: polling resumes when shown, and the job completes',
          hiddenState);
    check(net.maxInflight === 1, 'follow: at most one status request in flight per job',
          net.maxInflight);
    note(`follow: ${(net.polls.get(id2) || []).length} status requests for the long job`);

    // 2. play it: currentTime advances, the highlighted line moves, a click seeks
    note('play');
    await card.locator('a', { hasText: 'Play' }).click();
    await page.waitForSelector('#transcript li button', { timeout: 10000 });
    const starts = await page.$$eval('#transcript button', bs => bs.map(b => Number(b.dataset.start)));
    check(starts.length >= 3, 'play: the transcript is shown beside the player', starts.length);
    const played = await page.evaluate(() => document.getElementById('audio').play()
        .then(() => 'ok', e => String(e)));
    check(played === 'ok', 'play: the audio element plays', played);
    const t1 = await until(async () => (await audioTime(page)) > 0.5, { timeout: 10000 });
    check(t1, 'play: currentTime advances', await audioTime(page));
    check(await currentLine(page) === 0, 'play: the first line is highlighted',
          await currentLine(page));

    // just before line 2 starts: the highlight moves by itself as it plays
    await page.evaluate(t => { document.getElementById('audio').currentTime = t; },
                        Math.max(0, starts[1] - 0.8));
    const moved = await until(async () => (await currentLine(page)) === 1, { timeout: 6000 });
    check(moved, 'play: the highlight moves to the next line as the audio plays',
          { line: await currentLine(page), t: await audioTime(page) });
    await shot(page, 'player.png');

    const later = starts.length - 2;
    const tBefore = await audioTime(page);
    await page.click(`#transcript button[data-index="${later}"]`);
    const jumped = await until(async () => {
        const t = await audioTime(page);
        return Math.abs(t - starts[later]) < 1.5 && (await currentLine(page)) === later;
    }, { timeout: 5000 });
    check(jumped, 'play: clicking a later line seeks to it',
          { from: tBefore, to: await audioTime(page), want: starts[later] });

    // the keyboard: arrow to the next line, Enter plays from it
    await page.focus('#transcript button[data-index="0"]');
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    const keyed = await until(async () => Math.abs((await audioTime(page)) - starts[1]) < 1.5,
                              { timeout: 5000 });
    check(keyed, 'play: arrow keys and Enter seek from the transcript', await audioTime(page));

    // the service worker keeps the played episode and serves it (Range too)
    const audioPath = `/v1/podcasts/${id}/audio`;
    const cached = await until(() => page.evaluate(async (u) => {
        if (!('caches' in window)) {
            return false;
        }
        const c = await caches.open('podgen-audio-v1');
        return Boolean(await c.match(u)) && Boolean(navigator.serviceWorker.controller);
    }, audioPath), { timeout: 15000, every: 250 });
    check(cached, 'sw: the played audio is in the cache, the page is controlled');
    const fromSw = await page.evaluate(async (u) => {
        const r = await fetch(u, { headers: { Range: 'bytes=100-199' } });
        return { status: r.status, sw: r.headers.get('X-Podgen-SW'),
                 range: r.headers.get('Content-Range'),
                 len: (await r.arrayBuffer()).byteLength };
    }, audioPath);
    check(fromSw.status === 206 && fromSw.sw === 'cache' && fromSw.len === 100
          && /^bytes 100-199\/\d+$/.test(fromSw.range || ''),
          'sw: a Range request of a played episode is served from the cache', fromSw);
    await page.evaluate(() => document.getElementById('audio').pause());

    // offline: the app shell still opens (from the service worker's cache)
    await ctx.setOffline(true);
    await page.goto(base + '/#/create');
    await page.reload();
    const offline = await page.waitForSelector('#create-h', { timeout: 5000 })
        .then(() => page.evaluate(() => ({
            h1: document.getElementById('create-h').textContent,
            hosts: document.querySelectorAll('#host-list li.host').length })), e => String(e));
    check(offline.h1 === 'Create a podcast' && offline.hosts === 2,
          'sw: the app shell opens offline', offline);
    await ctx.setOffline(false);

    // 3. a library of 10,000 episodes, scrolled with a bounded DOM
    note(`seed ${SEED} records`);
    const jobsDir = path.join(store, 'jobs');
    const template = JSON.parse(fs.readFileSync(path.join(jobsDir, `${id}.json`), 'utf8'));
    const ids = new Set();
    for (let i = 1; i <= SEED; i++) {
        const ms = template.created_ms - 60000 * i;
        const sid = 'pod_' + ms.toString(16).padStart(12, '0') + i.toString(16).padStart(8, '0');
        ids.add(sid);
        const rec = { ...template, id: sid, version: 1, created_ms: ms, updated_ms: ms,
                      title: `Seeded episode ${i}` };
        const f = path.join(jobsDir, `${sid}.json`);
        fs.writeFileSync(f, JSON.stringify(rec));
        fs.chmodSync(f, 0o644);
    }
    check(ids.size === SEED && [...ids].every(x => /^pod_[0-9a-f]{20}$/.test(x)),
          'library: seeded ids are distinct and valid');
    note('seeded');

    await page.click('nav a[data-view="library"]');
    await page.waitForFunction(() => Number(document.getElementById('lib-list').dataset.loaded) >= 100);
    const rowCount = () => page.$$eval('#lib-list .lib-row', r => r.length);
    let maxRows = await rowCount();
    const listsBefore = net.lists.length;
    let stuck = false;
    for (let k = 0; k < 400; k++) {
        const state = await page.$eval('#lib-list', l => ({
            loaded: Number(l.dataset.loaded), more: l.dataset.hasMore === 'true' }));
        if (!state.more) {
            break;
        }
        await page.$eval('#lib-viewport', v => { v.scrollTop = v.scrollHeight; });
        const grew = await page.waitForFunction(
            b => { const l = document.getElementById('lib-list');
                   return Number(l.dataset.loaded) > b || l.dataset.hasMore === 'false'; },
            state.loaded, { timeout: 10000 }).then(() => true, () => false);
        maxRows = Math.max(maxRows, await rowCount());
        if (!grew) {
            stuck = true;
            break;
        }
    }
    await page.$eval('#lib-viewport', v => { v.scrollTop = v.scrollHeight; });
    await page.waitForTimeout(100);
    maxRows = Math.max(maxRows, await rowCount());
    const lib = await page.evaluate(() => {
        const l = document.getElementById('lib-list');
        const v = document.getElementById('lib-viewport');
        const rows = [...l.querySelectorAll('.lib-row')];
        const last = rows.sort((a, b) => b.dataset.index - a.dataset.index)[0];
        return { loaded: Number(l.dataset.loaded), more: l.dataset.hasMore,
                 pages: Number(l.dataset.pages), scrollHeight: v.scrollHeight,
                 lastTitle: last ? last.querySelector('.title').textContent : null };
    });
    note(`library: ${JSON.stringify(lib)}, max rows in the DOM ${maxRows}`);
    check(!stuck && lib.more === 'false' && lib.loaded === SEED + 2,
          'library: every page loads as the list is scrolled', lib);
    const cursorLists = net.lists.slice(listsBefore).filter(q => /cursor=pod_/.test(q)).length;
    check(cursorLists >= SEED / 100, 'library: pages come by cursor pagination',
          { cursorLists });
    check(maxRows > 5 && maxRows < ROW_BOUND, `library: fewer than ${ROW_BOUND} rows in the DOM`,
          maxRows);
    check(lib.scrollHeight >= 64 * SEED, 'library: the scroll height is that of every row',
          lib.scrollHeight);
    check(lib.lastTitle === `Seeded episode ${SEED}`, 'library: the oldest episode is last',
          lib.lastTitle);

    // the middle: rows are where they belong
    const mid = await page.evaluate(() => {
        const v = document.getElementById('lib-viewport');
        v.scrollTop = 5001 * 64;
        return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => {
            const row = [...document.querySelectorAll('#lib-list .lib-row')]
                .find(x => x.dataset.index === '5001');
            r(row ? row.querySelector('.title').textContent : null);
        })));
    });
    check(mid === 'Seeded episode 5000', 'library: a jump to the middle shows its rows', mid);

    // keyboard: the arrow keys move between rows
    await page.focus('#lib-list .lib-row[data-index="5001"] .title');
    await page.keyboard.press('ArrowDown');
    const focusedRow = await page.evaluate(() => {
        const r = document.activeElement.closest('.lib-row');
        return r ? Number(r.dataset.index) : -1;
    });
    check(focusedRow === 5002, 'library: ArrowDown moves to the next row', focusedRow);
    await shot(page, 'library.png');

    // delete one (confirmed)
    const victim = await page.$eval('#lib-list .lib-row[data-index="5002"]', r => r.dataset.id);
    let dialogText = '';
    page.once('dialog', d => { dialogText = d.message(); d.accept(); });
    const [del] = await Promise.all([
        page.waitForResponse(r => r.request().method() === 'DELETE'),
        page.click('#lib-list .lib-row[data-index="5002"] button.del')
    ]);
    check(del.status() === 204 && /Seeded episode 5001/.test(dialogText),
          'library: delete asks first, then DELETE answers 204',
          { status: del.status(), dialogText });
    const gone = await until(() => page.evaluate(v => !document.querySelector(
        `#lib-list .lib-row[data-id="${v}"]`), victim), { timeout: 3000 });
    const after = await page.evaluate(v => fetch(`/v1/podcasts/${v}`).then(r => r.status), victim);
    check(gone && after === 404, 'library: the deleted episode is gone', { gone, after });
    const hrefs = await page.evaluate(async () => {
        const feed = document.getElementById('lib-feed').getAttribute('href');
        const a = document.querySelector('#lib-list .lib-row a.dl');
        const r = await fetch(feed);
        return { feed, dl: a && a.getAttribute('href'), download: a && a.hasAttribute('download'),
                 feedStatus: r.status, feedType: r.headers.get('Content-Type'),
                 rss: /<rss /.test(await r.text()) };
    });
    check(hrefs.feed === '/v1/podcasts/feed.xml' && hrefs.feedStatus === 200 && hrefs.rss
          && /\/audio$/.test(hrefs.dl || '') && hrefs.download,
          'library: RSS feed and download links', hrefs);

    // 4. API errors are shown to the person
    note('errors');
    await page.click('nav a[data-view="create"]');
    await page.fill('#topic', '');
    await page.fill('#source', '');
    resp = await submitCreate(page);
    const errBody = await resp.json().catch(() => ({}));
    const msg = errBody.error && errBody.error.message;
    check(resp.status() === 400 && msg, 'error: an empty topic and source get a 400',
          { status: resp.status(), errBody });
    const shown = await until(() => page.$eval('#create-error',
        (e, m) => e.textContent.includes(m) && e.getAttribute('role') === 'alert', msg),
        { timeout: 3000 });
    check(shown, 'error: the 400 message is in the form\'s alert region',
          await page.$eval('#create-error', e => e.textContent));
    check(await page.$eval('#topic', e => e.getAttribute('aria-invalid')) === 'true'
          && await page.evaluate(() => document.activeElement.id) === 'topic',
          'error: the field it names is marked invalid and focused');
    await shot(page, 'create-error.png');

    await page.goto(base + '/#/play/pod_000000000000ffffffff');
    const notFound = await until(() => page.$eval('#play-error', e => e.textContent),
                                 { timeout: 5000 });
    check(/no such podcast/i.test(notFound || ''), 'error: a missing podcast is reported',
          notFound);

    // 5. the dashboard
    note('monitor');
    await page.click('nav a[data-view="monitor"]');
    await page.waitForFunction(() => /Updated/.test(
        document.getElementById('m-updated').textContent), null, { timeout: 10000 });
    const dash = await page.evaluate(() => {
        const t = id => document.getElementById(id).textContent;
        const row = document.querySelector('#m-latency tr[data-endpoint="podcasts"]');
        return {
            active: t('m-active'), completed: t('m-jobs-completed'),
            hitAudio: t('m-hit-audio'), hitScript: t('m-hit-script'),
            q: row ? [...row.querySelectorAll('td[data-q]')].map(c => c.textContent) : [],
            errors: document.querySelectorAll('#m-errors dd').length
        };
    });
    const metrics = await page.evaluate(() => fetch('/metrics?format=json').then(r => r.json()));
    note(`dashboard: ${JSON.stringify(dash)}`);
    check(/^\d+$/.test(dash.active) && Number(dash.active) >= 1,
          'monitor: active connections shown', dash.active);
    check(dash.completed === String(metrics.jobs.completed),
          'monitor: jobs as /metrics?format=json has them',
          { shown: dash.completed, json: metrics.jobs });
    check(/^\d+(\.\d)?%$/.test(dash.hitAudio) && /^\d+(\.\d)?%$/.test(dash.hitScript),
          'monitor: cache hit ratios shown', dash);
    const qv = dash.q.map(s => parseFloat(s));
    check(dash.q.length === 3 && dash.q.every(s => / ms$/.test(s))
          && qv[0] <= qv[1] && qv[1] <= qv[2],
          'monitor: p50 <= p90 <= p99 of the podcasts endpoint, from the buckets', dash.q);
    check(dash.errors === Object.keys(metrics.errors).length, 'monitor: errors by type',
          dash.errors);
    const qs = await page.evaluate(async () => {
        const m = await import('/js/monitor.js');
        const b = [[0.1, 0], [0.2, 50], [0.4, 100], [Infinity, 100]];
        return [m.quantile(0.5, b), m.quantile(0.75, b), m.quantile(0.99, [[1, 10], [Infinity, 20]]),
                m.quantile(0.5, [[1, 0], [Infinity, 0]])];
    });
    check(Math.abs(qs[0] - 0.2) < 1e-9 && Math.abs(qs[1] - 0.3) < 1e-9 && qs[2] === 1
          && qs[3] === null, 'monitor: histogram_quantile arithmetic', qs);
    await shot(page, 'monitor.png');

    // accessibility: names, landmarks, contrast, visible focus
    note('accessibility');
    const a11y = [];
    for (const view of ['#/create', `#/play/${id}`, '#/library', '#/monitor']) {
        await page.goto(base + '/' + view);
        await page.waitForTimeout(view === '#/library' ? 400 : 200);
        a11y.push(await page.evaluate((v) => {
            const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length)
                && getComputedStyle(e).visibility !== 'hidden';
            const out = { view: v, unnamed: [], lowContrast: [] };
            for (const e of document.querySelectorAll('input, select, textarea')) {
                if (visible(e) && !e.labels.length && !e.getAttribute('aria-label')
                    && !e.getAttribute('aria-labelledby')) {
                    out.unnamed.push(e.outerHTML.slice(0, 80));
                }
            }
            for (const e of document.querySelectorAll('button, a')) {
                if (visible(e) && !e.textContent.trim() && !e.getAttribute('aria-label')) {
                    out.unnamed.push(e.outerHTML.slice(0, 80));
                }
            }
            const rgb = s => (s.match(/[\d.]+/g) || []).map(Number);
            const lum = ([r, g, b]) => {
                const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
            };
            const bgOf = (e) => {
                for (let x = e; x; x = x.parentElement) {
                    const c = rgb(getComputedStyle(x).backgroundColor);
                    if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) {
                        return c.slice(0, 3);
                    }
                }
                return [255, 255, 255];
            };
            for (const e of document.querySelectorAll('body *')) {
                const text = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
                if (!text || !visible(e) || e.closest('.vh')) {
                    continue;
                }
                const cs = getComputedStyle(e);
                if (e.matches('button:disabled') || e.closest('option')) {
                    continue;
                }
                const fg = rgb(cs.color).slice(0, 3);
                const l1 = lum(fg);
                const l2 = lum(bgOf(e));
                const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
                if (ratio < 4.5) {
                    out.lowContrast.push(`${e.tagName}.${e.className}: ${ratio.toFixed(2)} "${e.textContent.trim().slice(0, 30)}"`);
                }
            }
            out.landmarks = ['header', 'nav', 'main', 'footer']
                .every(t => document.querySelector(t));
            return out;
        }, view));
    }
    check(a11y.every(r => r.unnamed.length === 0), 'a11y: every control has a name',
          a11y.map(r => ({ view: r.view, unnamed: r.unnamed })));
    check(a11y.every(r => r.lowContrast.length === 0), 'a11y: text contrast at least 4.5:1',
          a11y.map(r => ({ view: r.view, low: r.lowContrast.slice(0, 5) })));
    check(a11y.every(r => r.landmarks), 'a11y: header, nav, main and footer landmarks');
    await page.goto(base + '/#/create');
    await page.reload();        // a fresh document: the focus starts at its top
    await page.waitForSelector('#host-list li.host');
    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement.className);
    await page.keyboard.press('Tab');
    const outline = await page.evaluate(() => {
        const cs = getComputedStyle(document.activeElement);
        return { el: document.activeElement.textContent.trim(), style: cs.outlineStyle,
                 width: cs.outlineWidth };
    });
    check(first === 'skip' && outline.style !== 'none' && parseFloat(outline.width) >= 2,
          'a11y: the skip link comes first, focus is visible', { first, outline });

    // 6. a phone-sized screen
    note('375 px');
    await page.setViewportSize({ width: 375, height: 812 });
    const widths = {};
    for (const [view, name] of [['#/create', 'mobile-create.png'],
                                [`#/play/${id}`, 'mobile-player.png'],
                                ['#/library', 'mobile-library.png'],
                                ['#/monitor', 'mobile-monitor.png']]) {
        await page.goto(base + '/' + view);
        await page.waitForTimeout(300);
        widths[view] = await page.evaluate(() => document.documentElement.scrollWidth);
        await shot(page, name);
    }
    check(Object.values(widths).every(w => w <= 375), 'mobile: nothing wider than 375 px',
          widths);

    // a phone: the library's rows keep their titles (up to two lines) and
    // times whole, the actions beside them
    await page.goto(base + '/#/library');
    await until(() => page.$$eval('#lib-list .lib-row:not(.placeholder)', r => r.length),
                { timeout: 8000 });
    const narrow = await page.$$eval('#lib-list .lib-row:not(.placeholder)', rows => {
        const vp = document.getElementById('lib-viewport').getBoundingClientRect();
        return rows.filter(r => {
            const b = r.getBoundingClientRect();
            return b.top >= vp.top && b.bottom <= vp.bottom;
        }).map(r => {
            const t = r.querySelector('.title');
            const s = r.querySelector('.sub');
            const a = r.querySelector('.acts');
            return { title: t.textContent, titleCut: t.scrollHeight > t.clientHeight + 1
                                                     || t.scrollWidth > t.clientWidth + 1,
                     sub: s.textContent, subCut: s.scrollWidth > s.clientWidth + 1,
                     info: Math.round(r.querySelector('.info').getBoundingClientRect().width),
                     acts: Math.round(a.getBoundingClientRect().width),
                     names: [...a.querySelectorAll('a, button')].map(x => x.textContent.trim()) };
        });
    });
    check(narrow.length >= 3
          && narrow.every(r => (r.title.length > 48 || !r.titleCut) && !r.subCut
                               && r.info >= 200 && r.acts <= 100
                               && r.names.every(n => /^[↓✕](Download|Delete) ./.test(n))),
          'mobile: library rows show whole titles and times at 375 px, actions as named icons',
          narrow);

    // installable: Chromium's own criteria, in a profile that is not
    // incognito (Playwright's contexts are)
    note('install');
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'podgen-chromium-'));
    try {
        const pctx = await chromium.launchPersistentContext(profile, {
            executablePath: process.env.PODGEN_CHROMIUM || '/usr/bin/chromium',
            args: ['--no-sandbox'] });
        const pp = pctx.pages()[0] || await pctx.newPage();
        await pp.goto(base + '/');
        await pp.waitForFunction(() => navigator.serviceWorker
                                       && navigator.serviceWorker.controller, null,
                                 { timeout: 10000 }).catch(() => {});
        const cdp = await pctx.newCDPSession(pp);
        const man = await cdp.send('Page.getAppManifest');
        const inst = await cdp.send('Page.getInstallabilityErrors');
        let parsed = {};
        try { parsed = JSON.parse(man.data || '{}'); } catch { /* checked below */ }
        check(/\/manifest\.webmanifest$/.test(man.url || '') && man.errors.length === 0,
              'install: the manifest is linked and Chromium parses it without errors', man.errors);
        check(inst.installabilityErrors.length === 0,
              'install: installable per Chromium (Page.getInstallabilityErrors is empty)',
              inst.installabilityErrors);
        const head = await pp.evaluate(async () => {
            const meta = document.querySelector('meta[name="theme-color"]');
            const icons = {};
            for (const u of ['favicon.ico', 'icons/icon.svg', 'icons/icon-192.png',
                             'icons/icon-512.png', 'icons/icon-maskable-512.png']) {
                const r = await fetch(u, { cache: 'no-store' });
                const b = new Uint8Array(await r.arrayBuffer());
                const v = new DataView(b.buffer);
                icons[u] = { status: r.status, type: r.headers.get('content-type'),
                             png: b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47
                                  ? [v.getUint32(16), v.getUint32(20)] : null };
            }
            return { theme: meta && meta.content, icons };
        });
        const ic = head.icons;
        check(head.theme === parsed.theme_color && head.theme === '#0b57d0',
              'install: theme-color in the page and the manifest', { head: head.theme, parsed });
        check(Object.values(ic).every(i => i.status === 200)
              && String(ic['icons/icon-192.png'].png) === '192,192'
              && String(ic['icons/icon-512.png'].png) === '512,512'
              && String(ic['icons/icon-maskable-512.png'].png) === '512,512'
              && /^image\/png/.test(ic['icons/icon-192.png'].type)
              && /^image\/svg\+xml/.test(ic['icons/icon.svg'].type),
              'install: favicon and icons are served (PNGs of 192 and 512 px)', ic);
        check((parsed.icons || []).some(i => /maskable/.test(i.purpose || '')),
              'install: a maskable icon', parsed.icons);
        await pctx.close();
    } finally {
        fs.rmSync(profile, { recursive: true, force: true });
    }

    // a pcm episode is not handed to the audio element (it has no header
    // a browser could read); it is offered for download instead
    note('pcm');
    const pcmId = await page.evaluate(async () => {
        const r = await fetch('/v1/podcasts', {
            method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ format: 'pcm', title: 'Raw for a tool',
                                   segments: [{ speaker: 'A', text: 'Raw audio for a tool.' }] }) });
        const j = await r.json();
        for (let i = 0; i < 100; i++) {
            const s = await fetch(`/v1/podcasts/${j.id}`).then(x => x.json());
            if (s.status === 'completed' || s.status === 'failed') {
                return s.status === 'completed' ? j.id : null;
            }
            await new Promise(res => setTimeout(res, 200));
        }
        return null;
    });
    let pcm = null;
    if (pcmId) {
        await page.goto(`${base}/#/play/${pcmId}`);
        await until(() => page.$eval('#play-raw', e => !e.hidden), { timeout: 8000 });
        await page.waitForTimeout(300);
        pcm = await page.evaluate(() => {
            const a = document.getElementById('audio');
            return { src: a.getAttribute('src'), hidden: a.hidden,
                     error: a.error && a.error.message,
                     raw: !document.getElementById('play-raw').hidden,
                     download: document.getElementById('play-download').getAttribute('download') };
        });
    }
    check(pcm && pcm.src === null && pcm.hidden && !pcm.error && pcm.raw
          && /\.pcm$/.test(pcm.download || ''),
          'player: a pcm episode is offered for download, not handed to the player', pcm);

    // backoff: status requests that fail are retried later and later
    note('backoff');
    const ctx2 = await browser.newContext({ serviceWorkers: 'block' });
    const page2 = await ctx2.newPage();
    const times = [];
    await page2.route(/\/v1\/podcasts\/pod_[0-9a-f]{20}(\?.*)?$/, (route) => {
        times.push(Date.now());
        route.fulfill({ status: 503, contentType: 'application/json',
                        headers: { 'Retry-After': '0' },
                        body: JSON.stringify({ error: { message: 'the job queue is full; retry shortly',
                                                        type: 'server_error', param: null,
                                                        code: 'server_busy' } }) });
    });
    await page2.goto(`${base}/#/play/${id}`);
    await until(() => times.length >= 3, { timeout: 8000 });
    const errText = await page2.$eval('#play-error', e => e.textContent);
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    check(times.length >= 3 && gaps[0] >= 400 && gaps[1] >= gaps[0] * 1.2 - 300
          && /queue is full/.test(errText),
          'follow: failures back off exponentially, and the error is shown',
          { gaps, errText });
    await ctx2.close();

    check(net.pageErrors.length === 0, 'no uncaught errors in the page', net.pageErrors);
    await ctx.close();
} catch (err) {
    check(false, 'the browser script runs to its end', String(err && err.stack || err));
} finally {
    await browser.close();
}

note(`${checks} checks, ${failed} failed`);
console.log(`UI-DONE ${JSON.stringify({ checks, failed, seconds: (Date.now() - t0) / 1000 })}`);
exitCode = failed ? 1 : 0;
process.exit(exitCode);
