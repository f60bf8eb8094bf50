// podgen web UI: the views and the router (#/create, #/library,
// #/monitor, #/play/{id}).

import * as create from './create.js';
import * as jobs from './jobs.js';
import * as player from './player.js';
import * as library from './library.js';
import * as monitor from './monitor.js';
import * as follow from './follow.js';

const views = {
    create: { el: 'view-create', mod: null },
    play: { el: 'view-play', mod: player },
    library: { el: 'view-library', mod: library },
    monitor: { el: 'view-monitor', mod: monitor }
};

let currentView = null;
let firstRoute = true;

function parse() {
    const h = location.hash.replace(/^#\/?/, '');
    const [name, ...rest] = h.split('/');
    if (name === 'play' && rest.length) {
        return { name: 'play', arg: decodeURIComponent(rest.join('/')) };
    }
    return { name: views[name] ? name : 'create', arg: null };
}

function route() {
    const { name, arg } = parse();
    if (currentView && currentView !== name && views[currentView].mod) {
        views[currentView].mod.leave();
    }
    for (const [k, v] of Object.entries(views)) {
        document.getElementById(v.el).hidden = k !== name;
    }
    for (const a of document.querySelectorAll('.top nav a')) {
        if (a.dataset.view === name) {
            a.setAttribute('aria-current', 'page');
        } else {
            a.removeAttribute('aria-current');
        }
    }
    const changed = currentView !== name;
    currentView = name;
    if (views[name].mod) {
        views[name].mod.enter(arg);
    }
    if (name !== 'play') {
        const h1 = document.querySelector(`#${views[name].el} h1`);
        document.title = `${h1.textContent} · podgen`;
    }
    // a new view: focus its heading, so reading starts there (not on the
    // first load, where the browser's own order is right)
    if (!firstRoute && (changed || name === 'play')) {
        document.querySelector(`#${views[name].el} h1`).focus();
    }
    firstRoute = false;
}

function registerServiceWorker() {
    if (!('serviceWorker' in navigator)) {
        return;
    }
    navigator.serviceWorker.register('sw.js').catch(err => {
        // the app works without it; only offline use is lost
        console.warn('podgen: no service worker:', err);
    });
}

function start() {
    jobs.init();
    create.init();
    player.init();
    library.init();
    monitor.init();

    jobs.onDone(() => library.markStale());
    library.onDeleted((id) => {
        jobs.forget(id);
        player.forget(id);
        if ('caches' in window) {
            caches.open('podgen-audio-v1')
                .then(c => c.delete(`/v1/podcasts/${id}/audio`))
                .catch(() => {});
        }
    });

    window.addEventListener('hashchange', route);
    route();
    registerServiceWorker();

    // what is followed, for people debugging (and the browser test)
    window.podgen = { follow: follow.stats };
}

start();
