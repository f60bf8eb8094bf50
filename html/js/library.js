// The library: every episode, newest first, in a virtual list.  Rows have
// one fixed height; only the rows in view (and a few either side) exist in
// the DOM, placed with transforms in a spacer as tall as all the rows.
// Pages come from GET /v1/podcasts?limit=&cursor= as the list is scrolled
// near its end.

import * as api from './api.js';
import { el, $, showError, clearError, announce, clock, when, titleOf } from './ui.js';
import { follow, terminal } from './follow.js';

const ROW_H = 64;           // px; the same as --row-h in app.css
const OVERSCAN = 6;         // rows rendered above and below the view
const PAGE = 100;           // rows per request (the API's maximum)
const PLACEHOLDERS = 10;    // "loading" rows after the last loaded one
const AHEAD = 2;            // load when this many views from the end

let viewport, list, countEl, errBox;
let items = [];
let cursor = null;
let hasMore = true;
let loading = false;
let pages = 0;
let generation = 0;         // bumps on refresh: late pages are dropped
let retryAt = 0;
let failures = 0;
let stale = true;
let frame = 0;
const rows = new Map();     // index -> row element
const deletedListeners = new Set();

function total() {
    return items.length + (hasMore ? PLACEHOLDERS : 0);
}

function keyOf(i) {
    return i < items.length ? items[i].id : 'placeholder';
}

// the duration (or the state) first: on a narrow screen the date is what
// gets cut
function subline(it) {
    const parts = [];
    if (it.status === 'completed') {
        parts.push(clock(it.duration_s));
    } else if (it.status === 'running' || it.status === 'queued') {
        const p = it.progress || {};
        parts.push(it.status + (p.total ? ` ${p.done}/${p.total}` : ''));
    } else {
        parts.push(it.status);
    }
    parts.push(when(it.created_at));
    return parts.filter(Boolean).join(' · ');
}

// A row of a job still being made follows it while the row exists (the
// tracker shares one long poll with the jobs panel).
function followRow(row, it) {
    // (a microtask: the first call comes before the row is in place)
    row.stopFollow = follow(it.id, (ev) => queueMicrotask(() => {
        if (!ev.state || ev.state.status === it.status
            && (ev.state.progress || {}).done === (it.progress || {}).done) {
            return;
        }
        const at = items.findIndex(x => x.id === it.id);
        if (at >= 0) {
            items[at] = ev.state;
            const r = rows.get(at);
            if (r === row && !r.contains(document.activeElement)) {
                dropRow(at, r);
                schedule();
            }
        }
    }), it);
}

function dropRow(i, row) {
    if (row.stopFollow) {
        row.stopFollow();
        row.stopFollow = null;
    }
    row.remove();
    rows.delete(i);
}

function makeRow(i) {
    const row = el('div', { class: 'lib-row', role: 'listitem',
                            'data-index': i, 'aria-posinset': i + 1 });
    if (i >= items.length) {
        row.classList.add('placeholder');
        row.dataset.key = 'placeholder';
        row.append(el('div', { class: 'info' },
                      el('span', { class: 'title' }, 'Loading…')));
        return row;
    }
    const it = items[i];
    const title = titleOf(it);
    row.dataset.key = it.id;
    row.dataset.id = it.id;
    const name = it.status === 'completed'
        ? el('a', { class: 'title', href: `#/play/${it.id}` }, title)
        : el('span', { class: 'title' }, title);
    const acts = el('div', { class: 'acts' });
    if (it.status === 'completed') {
        acts.append(el('a', { class: 'button secondary dl', href: api.audioUrl(it.id),
                              download: `${title.replace(/[\\/:*?"<>|]+/g, '_')}.${it.format || 'mp3'}` },
                       el('span', { class: 'icon', 'aria-hidden': 'true' }, '↓'),
                       el('span', { class: 'label' }, 'Download'),
                       el('span', { class: 'vh' }, ` ${title}`)));
    }
    acts.append(el('button', { type: 'button', class: 'danger del', 'data-id': it.id },
                   el('span', { class: 'icon', 'aria-hidden': 'true' }, '✕'),
                   el('span', { class: 'label' }, 'Delete'),
                   el('span', { class: 'vh' }, ` ${title}`)));
    row.append(el('div', { class: 'info' }, name,
                  el('span', { class: 'sub' }, subline(it))), acts);
    if (!terminal(it)) {
        followRow(row, it);
    }
    return row;
}

function render() {
    frame = 0;
    const n = total();
    const setsize = hasMore ? -1 : items.length;
    list.style.height = `${n * ROW_H}px`;
    list.dataset.loaded = String(items.length);
    list.dataset.hasMore = String(hasMore);
    list.dataset.pages = String(pages);

    const top = viewport.scrollTop;
    const h = viewport.clientHeight || ROW_H * 10;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((top + h) / ROW_H) + OVERSCAN);
    const focused = document.activeElement;

    for (const [i, row] of rows) {
        const keep = i >= first && i <= last && row.dataset.key === keyOf(i);
        // the focused row stays, even out of view, so focus is not lost
        if (!keep && !(row.contains(focused) && row.dataset.key === keyOf(i))) {
            dropRow(i, row);
        }
    }
    for (let i = first; i <= last; i++) {
        let row = rows.get(i);
        if (!row) {
            row = makeRow(i);
            row.style.transform = `translateY(${i * ROW_H}px)`;
            rows.set(i, row);
            list.append(row);
        }
        row.setAttribute('aria-setsize', setsize);
    }

    countEl.textContent = items.length === 0 && !hasMore
        ? 'No episodes yet. Create one first.'
        : `${items.length.toLocaleString()} episode${items.length === 1 ? '' : 's'}`
          + (hasMore ? ' loaded, more as you scroll' : '');

    // near the end: the next page
    if (hasMore && last + AHEAD * Math.ceil(h / ROW_H) >= items.length) {
        loadMore();
    }
}

function schedule() {
    if (!frame) {
        frame = requestAnimationFrame(render);
    }
}

function rerender() {
    for (const [i, row] of [...rows]) {
        dropRow(i, row);
    }
    render();
}

async function loadMore() {
    if (loading || !hasMore) {
        return;
    }
    const wait = retryAt - Date.now();
    if (wait > 0) {
        setTimeout(schedule, wait);
        return;
    }
    loading = true;
    const gen = generation;
    try {
        const r = await api.listPodcasts({ limit: PAGE, cursor });
        if (gen !== generation) {
            return;
        }
        const seen = new Set(items.map(x => x.id).slice(-PAGE));
        for (const it of r.data || []) {
            if (!seen.has(it.id)) {
                items.push(it);
            }
        }
        hasMore = Boolean(r.has_more && r.next_cursor);
        cursor = r.next_cursor || null;
        pages++;
        failures = 0;
        clearError(errBox);
    } catch (err) {
        if (gen !== generation) {
            return;
        }
        failures++;
        retryAt = Date.now() + Math.min(30000, 1000 * 2 ** (failures - 1));
        showError(errBox, err, 'The library could not be loaded');
    } finally {
        if (gen === generation) {
            loading = false;
            schedule();
        }
    }
}

export function refresh() {
    generation++;
    items = [];
    cursor = null;
    hasMore = true;
    loading = false;
    pages = 0;
    failures = 0;
    retryAt = 0;
    stale = false;
    viewport.scrollTop = 0;
    clearError(errBox);
    rerender();
}

async function remove(id, button) {
    const i = items.findIndex(x => x.id === id);
    if (i < 0) {
        return;
    }
    const title = titleOf(items[i]);
    if (!window.confirm(`Delete “${title}”? Its audio and transcript are removed for good.`)) {
        return;
    }
    button.disabled = true;
    try {
        await api.deletePodcast(id);
        announce(`Deleted “${title}”`);
    } catch (err) {
        if (err.status !== 404) {
            button.disabled = false;
            showError(errBox, err, `“${title}” could not be deleted`);
            return;
        }
        announce(`“${title}” was already deleted`);
    }
    const at = items.findIndex(x => x.id === id);
    if (at >= 0) {
        items.splice(at, 1);
    }
    for (const fn of deletedListeners) {
        fn(id);
    }
    rerender();
    // focus goes to the row that took its place
    const next = rows.get(Math.min(at, items.length - 1));
    const target = next && (next.querySelector('.del') || next.querySelector('.title'));
    (target || viewport).focus();
}

// Arrow keys, Page Up/Down, Home and End move between rows; the row is
// scrolled into view and rendered before it takes the focus.
function onKey(e) {
    const keys = ['ArrowDown', 'ArrowUp', 'PageDown', 'PageUp', 'Home', 'End'];
    if (!keys.includes(e.key) || items.length === 0) {
        return;
    }
    const row = document.activeElement && document.activeElement.closest
        ? document.activeElement.closest('.lib-row') : null;
    const page = Math.max(1, Math.floor(viewport.clientHeight / ROW_H) - 1);
    let i = row ? Number(row.dataset.index) : Math.floor(viewport.scrollTop / ROW_H) - 1;
    switch (e.key) {
    case 'ArrowDown': i += 1; break;
    case 'ArrowUp': i -= 1; break;
    case 'PageDown': i += page; break;
    case 'PageUp': i -= page; break;
    case 'Home': i = 0; break;
    case 'End': i = items.length - 1; break;
    }
    i = Math.max(0, Math.min(items.length - 1, i));
    e.preventDefault();
    const y = i * ROW_H;
    if (y < viewport.scrollTop) {
        viewport.scrollTop = y;
    } else if (y + ROW_H > viewport.scrollTop + viewport.clientHeight) {
        viewport.scrollTop = y + ROW_H - viewport.clientHeight;
    }
    render();
    const target = rows.get(i);
    if (target) {
        const same = row && document.activeElement.classList.contains('del') ? '.del' : '.title';
        (target.querySelector(same) || target.querySelector('.title, .del')).focus();
    }
}

export function markStale() {
    stale = true;
}

export function onDeleted(fn) {
    deletedListeners.add(fn);
}

export function enter() {
    if (stale && viewport.scrollTop < ROW_H * 5) {
        refresh();
    } else {
        schedule();
    }
}

export function leave() {}

export function init() {
    viewport = $('#lib-viewport');
    list = $('#lib-list');
    countEl = $('#lib-count');
    errBox = $('#lib-error');

    viewport.addEventListener('scroll', schedule, { passive: true });
    viewport.addEventListener('keydown', onKey);
    list.addEventListener('click', (e) => {
        const b = e.target.closest('button.del');
        if (b) {
            remove(b.dataset.id, b);
        }
    });
    $('#lib-refresh').addEventListener('click', () => {
        refresh();
        announce('Library refreshed');
    });
    if ('ResizeObserver' in window) {
        new ResizeObserver(schedule).observe(viewport);
    }
}
