// Following jobs: one long poll per job at most, whoever asks.
//
// A job's first look is a plain GET; after that the poll is
// GET /v1/podcasts/{id}?wait=N with If-None-Match: the server holds it
// until the record changes (200) or the time is up (304).  Failures back
// off exponentially (with jitter, honouring Retry-After).  While the page
// is hidden nothing is polled: the request in flight is aborted, and the
// poll resumes when the page is shown again.

import * as api from './api.js';

const WAIT_S = 25;              // long-poll length asked of the server
const MIN_GAP_MS = 250;         // between two polls of one job
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30000;
const IDLE_MS = 1000;           // a job nobody follows is dropped after this
// A browser opens about 6 connections to a host: long polls get at most
// 3 of them, and other jobs are looked at (If-None-Match, cheap 304s)
// every few seconds until a long poll is free.
const MAX_LONG_POLLS = 3;
const SHORT_POLL_MS = 3000;

let longPolls = 0;

const watchers = new Map();     // id -> watcher

export function terminal(state) {
    return state && (state.status === 'completed' || state.status === 'failed');
}

function emit(w, event) {
    for (const fn of w.listeners) {
        try {
            fn(event, w);
        } catch (err) {
            console.error(err);
        }
    }
}

function backoff(failures, retryAfterS) {
    const exp = Math.min(BACKOFF_MAX_MS,
                         BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 10));
    const jittered = exp / 2 + Math.random() * exp / 2;
    return Math.max(jittered, (retryAfterS || 0) * 1000);
}

function schedule(w, delay) {
    clearTimeout(w.timer);
    w.timer = setTimeout(() => {
        w.timer = 0;
        poll(w);
    }, delay);
}

async function poll(w) {
    if (w.inflight || w.done || w.listeners.size === 0 || document.hidden) {
        return;
    }
    const gap = w.lastStart + MIN_GAP_MS - Date.now();
    if (gap > 0) {
        schedule(w, gap);
        return;
    }

    const ctrl = new AbortController();
    const follows = Boolean(w.etag && w.state);
    const long = follows && longPolls < MAX_LONG_POLLS;
    if (long) {
        longPolls++;
    }
    w.controller = ctrl;
    w.lastStart = Date.now();
    w.inflight = true;
    w.requests++;

    let next = null;
    try {
        const r = await api.getPodcast(w.id, {
            wait: long ? WAIT_S : 0,
            etag: w.state ? w.etag : null,
            signal: ctrl.signal
        });
        w.failures = 0;
        if (!r.notModified) {
            w.etag = r.etag;
            w.state = r.body;
            emit(w, { state: w.state });
        }
        if (terminal(w.state)) {
            w.done = true;
        } else {
            next = follows && !long ? SHORT_POLL_MS : 0;
        }
    } catch (err) {
        if (err && err.name === 'AbortError') {
            // hidden, or nobody follows any more: resumed by show()
        } else if (err.status === 404) {
            w.done = true;
            w.gone = true;
            emit(w, { error: err, gone: true });
        } else {
            w.failures++;
            const delay = backoff(w.failures, err.retryAfter);
            emit(w, { error: err, retryIn: delay });
            next = delay;
        }
    } finally {
        w.inflight = false;
        w.controller = null;
        if (long) {
            longPolls--;
        }
    }
    if (next !== null) {
        schedule(w, next);
    }
}

// follow(id, listener[, initialState]) -> stop().  The listener gets
// { state } on every change, { error, retryIn } on a failure, and
// { error, gone: true } when the job no longer exists.
export function follow(id, listener, initial = null) {
    let w = watchers.get(id);
    if (!w) {
        w = { id, state: null, etag: null, listeners: new Set(),
              inflight: false, controller: null, timer: 0, failures: 0,
              done: false, gone: false, lastStart: 0, requests: 0, idle: 0 };
        watchers.set(id, w);
    }
    clearTimeout(w.idle);
    w.idle = 0;
    if (initial && !w.state) {
        // a status we already have (a 202 or a list row) is the start; the
        // first look still asks for the current one
        w.state = initial;
    }
    w.listeners.add(listener);
    if (w.state) {
        listener({ state: w.state }, w);
    }
    if (!w.done && !w.inflight && !w.timer) {
        poll(w);
    }
    // The last one to stop ends the poll after a grace period: a view that
    // re-renders (stop, then follow again) keeps the request in flight.
    return () => {
        w.listeners.delete(listener);
        if (w.listeners.size === 0 && !w.idle) {
            w.idle = setTimeout(() => {
                w.idle = 0;
                if (w.listeners.size) {
                    return;
                }
                clearTimeout(w.timer);
                w.timer = 0;
                if (w.controller) {
                    w.controller.abort();
                }
                if (watchers.get(id) === w) {
                    watchers.delete(id);
                }
            }, IDLE_MS);
        }
    };
}

export function stateOf(id) {
    const w = watchers.get(id);
    return w ? w.state : null;
}

// For the curious (and the browser test): what is being followed.
export function stats() {
    return [...watchers.values()].map(w => ({
        id: w.id, status: w.state && w.state.status, inflight: w.inflight,
        requests: w.requests, failures: w.failures, done: w.done
    }));
}

document.addEventListener('visibilitychange', () => {
    for (const w of watchers.values()) {
        if (document.hidden) {
            clearTimeout(w.timer);
            w.timer = 0;
            if (w.controller) {
                w.controller.abort();
            }
        } else if (!w.done && !w.inflight) {
            w.failures = 0;
            poll(w);
        }
    }
});
