// The dashboard: GET /metrics?format=json every few seconds while the view
// is shown and the page visible.  The JSON has no histogram buckets, so the
// latency quantiles come from the Prometheus text of the same location
// (podgen_request_duration_seconds_bucket), read in the same refresh.

import * as api from './api.js';
import { el, $, showError, clearError, bytes } from './ui.js';

const EVERY_MS = 5000;
const QUANTILES = [0.5, 0.9, 0.99];

let timer = 0;
let active = false;
let busy = false;
let ctrl = null;
let errBox;

// Buckets of one histogram: { endpoint: [[le, cumulative count], ...] }
export function parseBuckets(text, family = 'podgen_request_duration_seconds') {
    const out = {};
    const re = new RegExp(`^${family}_bucket\\{([^}]*)\\}\\s+(\\S+)`);
    for (const line of text.split('\n')) {
        const m = re.exec(line);
        if (!m) {
            continue;
        }
        const labels = {};
        for (const l of m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
            labels[l[1]] = l[2];
        }
        const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
        const key = labels.endpoint || '';
        (out[key] = out[key] || []).push([le, Number(m[2])]);
    }
    for (const k of Object.keys(out)) {
        out[k].sort((a, b) => a[0] - b[0]);
    }
    return out;
}

// As Prometheus' histogram_quantile(): linear within the bucket that holds
// the rank; the +Inf bucket gives the highest finite bound.  null: no data.
export function quantile(q, buckets) {
    if (!buckets || buckets.length === 0) {
        return null;
    }
    const count = buckets[buckets.length - 1][1];
    if (!(count > 0)) {
        return null;
    }
    const rank = q * count;
    let prevLe = 0;
    let prevCount = 0;
    for (const [le, c] of buckets) {
        if (c >= rank) {
            if (le === Infinity) {
                return prevLe;
            }
            if (c === prevCount) {
                return le;
            }
            return prevLe + (le - prevLe) * (rank - prevCount) / (c - prevCount);
        }
        prevLe = le;
        prevCount = c;
    }
    return prevLe;
}

function ms(seconds) {
    if (seconds === null || !Number.isFinite(seconds)) {
        return '–';
    }
    const v = seconds * 1000;
    return v >= 100 ? `${Math.round(v)} ms` : `${v.toFixed(v >= 10 ? 1 : 2)} ms`;
}

function pct(r) {
    return Number.isFinite(r) ? `${(r * 100).toFixed(1)}%` : '–';
}

function duration(s) {
    if (!Number.isFinite(s)) {
        return '–';
    }
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    return d ? `${d} d ${h} h` : h ? `${h} h ${m} min` : `${m} min ${Math.floor(s % 60)} s`;
}

function set(id, text) {
    const e = document.getElementById(id);
    if (e && e.textContent !== text) {
        e.textContent = text;
    }
}

function render(m, buckets) {
    set('m-active', String(m.active_connections ?? '–'));
    set('m-queue', String(m.thread_pool_queue ?? '–'));
    set('m-uptime', duration(m.uptime_s));
    set('m-redis', m.redis_up ? 'connected' : 'not connected');

    const c = m.cache || {};
    set('m-hit-audio', pct(c.audio && c.audio.hit_ratio));
    set('m-hit-script', pct(c.script && c.script.hit_ratio));
    set('m-entries', String(c.entries ?? '–'));
    set('m-bytes', bytes(c.bytes));
    set('m-evictions', String(c.evictions ?? '–'));

    const j = m.jobs || {};
    for (const k of ['queued', 'running', 'completed', 'failed']) {
        set(`m-jobs-${k}`, String(j[k] ?? '–'));
    }

    const errs = $('#m-errors');
    errs.textContent = '';
    for (const [k, v] of Object.entries(m.errors || {})) {
        errs.append(el('div', {}, el('dt', {}, k.replace(/_/g, ' ')),
                       el('dd', { 'data-type': k }, String(v))));
    }

    const body = $('#m-latency tbody');
    body.textContent = '';
    for (const [name, e] of Object.entries(m.endpoints || {})) {
        const b = buckets[name];
        const cells = [
            el('th', { scope: 'row' }, name),
            el('td', {}, String(e.requests)),
            el('td', {}, `${e.errors} (${pct(e.error_rate)})`),
            ...QUANTILES.map(q => el('td', { 'data-q': q }, ms(quantile(q, b)))),
            el('td', {}, e.requests ? ms(e.avg_ms / 1000) : '–')
        ];
        body.append(el('tr', { 'data-endpoint': name }, ...cells));
    }

    set('m-updated', `Updated ${new Date().toLocaleTimeString()}`);
}

async function refresh() {
    if (busy || !active || document.hidden) {
        return;
    }
    busy = true;
    ctrl = new AbortController();
    try {
        const [m, text] = await Promise.all([
            api.metrics({ signal: ctrl.signal }),
            api.metricsText({ signal: ctrl.signal }).catch(err => {
                if (err.name === 'AbortError') {
                    throw err;
                }
                return '';      // quantiles are shown as unknown
            })
        ]);
        render(m, parseBuckets(text));
        clearError(errBox);
    } catch (err) {
        if (err.name !== 'AbortError') {
            showError(errBox, err, 'The metrics could not be read');
        }
    } finally {
        busy = false;
        ctrl = null;
    }
}

let loop = 0;

// one refresh loop at a time: a newer tick() ends the older one
function tick() {
    clearTimeout(timer);
    timer = 0;
    const mine = ++loop;
    if (!active || document.hidden) {
        return;
    }
    refresh().finally(() => {
        if (mine === loop && active && !document.hidden) {
            timer = setTimeout(tick, EVERY_MS);
        }
    });
}

export function enter() {
    active = true;
    tick();
}

export function leave() {
    active = false;
    clearTimeout(timer);
    timer = 0;
    if (ctrl) {
        ctrl.abort();
    }
}

export function init() {
    errBox = $('#monitor-error');
    document.addEventListener('visibilitychange', () => {
        if (!active) {
            return;
        }
        if (document.hidden) {
            clearTimeout(timer);
            timer = 0;
            if (ctrl) {
                ctrl.abort();
            }
        } else {
            tick();
        }
    });
}
