// The player: the episode's audio with its transcript beside it.  The line
// being spoken is highlighted (aria-current="time") as the audio plays;
// selecting a line plays from its start.  A job not finished yet is
// followed until it is.

import * as api from './api.js';
import { el, $, showError, clearError, clock, when, titleOf } from './ui.js';
import { follow } from './follow.js';

let audio, list, errBox, meta, now, heading, offline;
let segments = [];
let buttons = [];
let current = -1;
let loadedId = null;
let stopFollow = null;
let userScrolledAt = 0;

// the last segment that has started by time t
function indexAt(t) {
    let lo = 0;
    let hi = segments.length - 1;
    let found = -1;
    while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (segments[mid].start <= t + 0.05) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

function keepInView(b) {
    // the list scrolls by itself, the page does not; not while the person
    // scrolls the list
    if (Date.now() - userScrolledAt < 4000) {
        return;
    }
    const top = b.offsetTop;
    const bottom = top + b.offsetHeight;
    if (top < list.scrollTop || bottom > list.scrollTop + list.clientHeight) {
        list.scrollTop = Math.max(0, top - list.clientHeight / 3);
    }
}

function highlight() {
    const i = indexAt(audio.currentTime);
    if (i === current) {
        return;
    }
    if (current >= 0 && buttons[current]) {
        buttons[current].removeAttribute('aria-current');
    }
    current = i;
    if (i >= 0 && buttons[i]) {
        buttons[i].setAttribute('aria-current', 'time');
        keepInView(buttons[i]);
        now.textContent = `Now: ${segments[i].speaker}`;
    } else {
        now.textContent = '';
    }
}

function seekTo(i) {
    const s = segments[i];
    if (!s) {
        return;
    }
    audio.currentTime = s.start;
    highlight();
    const p = audio.play();
    if (p) {
        p.catch(err => {
            if (err.name !== 'AbortError') {
                showError(errBox, err, 'The audio cannot play');
            }
        });
    }
}

function renderTranscript(t) {
    segments = (t.segments || []).filter(s => Number.isFinite(s.start))
                                  .sort((a, b) => a.start - b.start);
    list.textContent = '';
    buttons = segments.map((s, i) => {
        const b = el('button', { type: 'button', 'data-index': i, 'data-start': s.start },
            el('span', { class: 't' }, clock(s.start)),
            el('span', { class: 'who' }, s.speaker),
            el('span', { class: 'text' }, s.text));
        b.addEventListener('click', () => seekTo(i));
        list.append(el('li', {}, b));
        return b;
    });
    current = -1;
    highlight();
}

function onListKey(e) {
    const i = buttons.indexOf(document.activeElement);
    if (i < 0) {
        return;
    }
    let j = null;
    if (e.key === 'ArrowDown') {
        j = Math.min(buttons.length - 1, i + 1);
    } else if (e.key === 'ArrowUp') {
        j = Math.max(0, i - 1);
    } else if (e.key === 'Home') {
        j = 0;
    } else if (e.key === 'End') {
        j = buttons.length - 1;
    }
    if (j !== null) {
        e.preventDefault();
        buttons[j].focus();
    }
}

async function showCompleted(s) {
    const id = s.id;
    meta.textContent = [when(s.created_at), clock(s.duration_s),
                        s.format ? s.format.toUpperCase() : ''].filter(Boolean).join(' · ');
    const src = api.audioUrl(id);
    $('#play-download').href = src;
    $('#play-download').setAttribute('download',
        `${titleOf(s).replace(/[\\/:*?"<>|]+/g, '_')}.${s.format || 'mp3'}`);
    $('#play-vtt').href = `${api.BASE}/${id}/transcript.vtt`;
    // raw pcm has no header a media element could read: not handed to it
    const raw = s.format === 'pcm';
    audio.hidden = raw;
    $('#play-raw').hidden = !raw;
    if (raw) {
        audio.removeAttribute('src');
    } else if (audio.getAttribute('src') !== src) {
        audio.src = src;
    }
    try {
        const t = await api.transcript(id);
        if (loadedId === id) {
            renderTranscript(t);
        }
    } catch (err) {
        showError(errBox, err, 'The transcript could not be loaded');
    }
    checkOffline(src);
}

async function checkOffline(src) {
    offline.hidden = true;
    if (!('caches' in window)) {
        return;
    }
    try {
        const c = await caches.open('podgen-audio-v1');
        offline.hidden = !(await c.match(src));
    } catch {
        // no cache storage here: nothing to show
    }
}

function keepForOffline() {
    // the service worker keeps a played episode (see sw.js)
    if (!('serviceWorker' in navigator) || !loadedId) {
        return;
    }
    const url = api.audioUrl(loadedId);
    navigator.serviceWorker.ready.then(reg => {
        if (reg.active) {
            reg.active.postMessage({ type: 'cache-audio', url });
        }
    }).catch(() => {});
}

export function enter(id) {
    if (!api.ID_RE.test(id || '')) {
        heading.textContent = 'Player';
        showError(errBox, `“${id}” is not a podcast id`);
        return;
    }
    if (id === loadedId) {
        return;
    }
    leave(true);
    loadedId = id;
    clearError(errBox);
    list.textContent = '';
    segments = [];
    buttons = [];
    current = -1;
    audio.removeAttribute('src');
    audio.load();
    meta.textContent = 'Loading…';
    heading.textContent = 'Player';

    let shown = false;
    stopFollow = follow(id, (ev) => {
        if (loadedId !== id) {
            return;
        }
        if (ev.state) {
            const s = ev.state;
            heading.textContent = titleOf(s);
            document.title = `${titleOf(s)} · podgen`;
            if (s.status === 'completed' && !shown) {
                shown = true;
                clearError(errBox);
                showCompleted(s);
            } else if (s.status === 'failed') {
                meta.textContent = '';
                showError(errBox, s.error && s.error.message ? s.error.message
                                                             : 'This podcast failed');
            } else if (s.status !== 'completed') {
                const p = s.progress || {};
                meta.textContent = `Being made: ${s.status}`
                    + (p.total ? `, ${p.done} of ${p.total} segments` : '');
            }
        } else if (ev.error) {
            showError(errBox, ev.error);
        }
    });
}

// Leaving the view pauses the audio (it keeps its place); a job still
// being made goes on being followed.  switching: another episode comes.
export function leave(switching = false) {
    if (audio) {
        audio.pause();
    }
    if (switching) {
        if (stopFollow) {
            stopFollow();
            stopFollow = null;
        }
        loadedId = null;
    }
}

export function forget(id) {
    if (loadedId === id) {
        leave(true);
        audio.removeAttribute('src');
        audio.load();
    }
}

export function init() {
    audio = $('#audio');
    list = $('#transcript');
    errBox = $('#play-error');
    meta = $('#play-meta');
    now = $('#play-now');
    heading = $('#play-h');
    offline = $('#play-offline');

    audio.addEventListener('timeupdate', highlight);
    audio.addEventListener('seeked', highlight);
    audio.addEventListener('playing', keepForOffline, { once: false });
    audio.addEventListener('error', () => {
        if (audio.getAttribute('src')) {
            showError(errBox, 'The audio could not be loaded'
                      + (audio.error && audio.error.message ? ` (${audio.error.message})` : ''));
        }
    });
    list.addEventListener('keydown', onListKey);
    list.addEventListener('wheel', () => { userScrolledAt = Date.now(); }, { passive: true });
    list.addEventListener('touchmove', () => { userScrolledAt = Date.now(); }, { passive: true });
    $('#rate').addEventListener('change', (e) => {
        audio.playbackRate = Number(e.target.value) || 1;
    });
    audio.addEventListener('loadedmetadata', () => {
        audio.playbackRate = Number($('#rate').value) || 1;
    });
    if ('serviceWorker' in navigator) {
        navigator.serviceWorker.addEventListener('message', (e) => {
            if (e.data && e.data.type === 'audio-cached' && loadedId
                && e.data.url === api.audioUrl(loadedId)) {
                offline.hidden = false;
            }
        });
    }
}
