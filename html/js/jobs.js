// The jobs panel: podcasts created from this browser, followed live until
// they are done.  The ids are kept in localStorage, so a reload goes on
// following them.

import { follow, terminal } from './follow.js';
import { el, $, announce, clock, titleOf } from './ui.js';
import { ID_RE } from './api.js';

const KEY = 'podgen.jobs';
const KEEP = 20;

const cards = new Map();        // id -> { li, stop, ... }
let listEl, emptyEl;
const doneListeners = new Set();

function saved() {
    try {
        const v = JSON.parse(localStorage.getItem(KEY) || '[]');
        return Array.isArray(v) ? v.filter(x => ID_RE.test(x)) : [];
    } catch {
        return [];
    }
}

function save() {
    try {
        localStorage.setItem(KEY, JSON.stringify([...cards.keys()].slice(0, KEEP)));
    } catch {
        // private mode: following still works for this page
    }
}

function syncEmpty() {
    emptyEl.hidden = cards.size > 0;
}

function statusText(s) {
    const p = s.progress || { done: 0, total: 0 };
    switch (s.status) {
    case 'queued':
        return 'Queued';
    case 'running':
        return p.total ? `Making audio: ${p.done} of ${p.total} segments`
                       : 'Writing the script';
    case 'completed':
        return `Ready · ${clock(s.duration_s)}`;
    case 'failed':
        return 'Failed: ' + (s.error && s.error.message ? s.error.message
                                                        : 'unknown error');
    default:
        return s.status || '';
    }
}

function render(card, s) {
    const { li, h3, bar, status, actions } = card;
    const prev = li.dataset.status;
    li.dataset.status = s.status;
    h3.textContent = s.title || card.label || titleOf(s);

    const p = s.progress || { done: 0, total: 0 };
    if (s.status === 'completed') {
        bar.max = 1;
        bar.value = 1;
    } else if (p.total) {
        bar.max = p.total;
        bar.value = p.done;
    } else {
        bar.removeAttribute('value');       // indeterminate
    }
    bar.setAttribute('aria-valuetext', statusText(s));

    // the live text changes at each step of the status, and every quarter
    const quarter = p.total ? Math.floor(4 * p.done / p.total) : -1;
    if (prev !== s.status || quarter !== card.quarter || terminal(s)) {
        status.textContent = statusText(s);
        card.quarter = quarter;
    }

    if (s.status === 'completed' && !card.playLink) {
        card.playLink = el('a', { class: 'button primary', href: `#/play/${s.id}` },
                           'Play');
        actions.prepend(card.playLink);
    }
    if (prev !== s.status && terminal(s)) {
        announce(`${h3.textContent}: ${s.status === 'completed' ? 'ready to play'
                                                                 : statusText(s)}`);
        for (const fn of doneListeners) {
            fn(s);
        }
    }
}

function remove(id) {
    const card = cards.get(id);
    if (!card) {
        return;
    }
    card.stop();
    card.li.remove();
    cards.delete(id);
    save();
    syncEmpty();
}

// Adds a job to the panel and follows it; state is its 202 status or null.
export function track(id, state = null, label = '') {
    if (cards.has(id)) {
        return cards.get(id).li;
    }
    const h3 = el('h3', { id: `job-h-${id}` }, label || 'Podcast');
    const bar = el('progress', { 'aria-labelledby': `job-h-${id}` });
    const status = el('p', { class: 'status', role: 'status' }, 'Looking…');
    const err = el('p', { class: 'error', role: 'alert' });
    const dismiss = el('button', { type: 'button', class: 'secondary' }, 'Dismiss',
                       el('span', { class: 'vh' }, ` ${label || id}`));
    const actions = el('div', { class: 'job-actions' }, dismiss);
    const li = el('li', { class: 'job', 'data-id': id }, h3, bar, status, err, actions);
    const card = { li, h3, bar, status, actions, label, quarter: -2, playLink: null };

    dismiss.addEventListener('click', () => {
        const next = li.nextElementSibling || li.previousElementSibling;
        remove(id);
        (next ? next.querySelector('button, a') : $('#topic')).focus();
    });

    card.stop = follow(id, (ev) => {
        if (ev.state) {
            err.textContent = '';
            render(card, ev.state);
        } else if (ev.gone) {
            li.dataset.status = 'gone';
            status.textContent = 'This podcast no longer exists.';
            bar.hidden = true;
        } else if (ev.error) {
            err.textContent = `${ev.error.message} (retrying in ${Math.ceil(ev.retryIn / 1000)} s)`;
        }
    }, state);

    cards.set(id, card);
    listEl.prepend(li);
    save();
    syncEmpty();
    return li;
}

export function forget(id) {
    remove(id);
}

export function onDone(fn) {
    doneListeners.add(fn);
}

export function init() {
    listEl = $('#jobs-list');
    emptyEl = $('#jobs-empty');
    for (const id of saved().reverse()) {
        track(id);
    }
    syncEmpty();
}
