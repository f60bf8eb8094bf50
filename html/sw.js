// podgen service worker.
//
// - The app shell (this folder's HTML, CSS and modules) is served from the
//   cache and refreshed from the network behind it (stale while
//   revalidate), so the UI opens offline.
// - An episode that was played is kept (the page posts "cache-audio" when
//   it starts playing); from then on its audio is served from the cache,
//   Range requests included (206 with Content-Range, as the media element
//   asks for them).  At most KEEP_EPISODES are kept, oldest out first.
// - Everything else under /v1/ and /metrics goes to the network untouched.

const SHELL = 'podgen-shell-v2';
const AUDIO = 'podgen-audio-v1';
const KEEP_EPISODES = 20;

const SHELL_FILES = [
    './',
    'index.html',
    'app.css',
    'js/app.js',
    'js/api.js',
    'js/ui.js',
    'js/follow.js',
    'js/jobs.js',
    'js/create.js',
    'js/player.js',
    'js/library.js',
    'js/monitor.js',
    'manifest.webmanifest',
    'favicon.ico',
    'icons/icon.svg',
    'icons/icon-192.png',
    'icons/icon-512.png',
    'icons/icon-maskable-512.png',
    'icons/apple-touch-icon.png'
];

const AUDIO_RE = /\/v1\/podcasts\/pod_[0-9a-f]{20}\/audio$/;

const scope = new URL(self.registration.scope);
const shellUrls = new Set(SHELL_FILES.map(f => new URL(f, scope).href));

self.addEventListener('install', (event) => {
    event.waitUntil((async () => {
        const c = await caches.open(SHELL);
        await c.addAll(SHELL_FILES);
        await self.skipWaiting();
    })());
});

self.addEventListener('activate', (event) => {
    event.waitUntil((async () => {
        for (const k of await caches.keys()) {
            if (k.startsWith('podgen-shell-') && k !== SHELL) {
                await caches.delete(k);
            }
        }
        await self.clients.claim();
    })());
});

function rangeOf(header, size) {
    const m = /^bytes=(\d*)-(\d*)$/.exec((header || '').trim());
    if (!m || (m[1] === '' && m[2] === '')) {
        return null;
    }
    let start;
    let end;
    if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
        end = size - 1;
    } else {
        start = Number(m[1]);
        end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    }
    return start <= end && start < size ? { start, end } : { invalid: true };
}

async function audioResponse(request) {
    const c = await caches.open(AUDIO);
    const hit = await c.match(request.url);
    if (!hit) {
        return fetch(request);
    }
    const type = hit.headers.get('Content-Type') || 'audio/mpeg';
    const blob = await hit.blob();
    const headers = { 'Content-Type': type, 'Accept-Ranges': 'bytes',
                      'X-Podgen-SW': 'cache' };
    const header = request.headers.get('Range');
    if (!header) {
        return new Response(blob, { status: 200, headers: {
            ...headers, 'Content-Length': String(blob.size) } });
    }
    const r = rangeOf(header, blob.size);
    if (!r || r.invalid) {
        return new Response(null, { status: 416, headers: {
            ...headers, 'Content-Range': `bytes */${blob.size}` } });
    }
    return new Response(blob.slice(r.start, r.end + 1), { status: 206, headers: {
        ...headers,
        'Content-Range': `bytes ${r.start}-${r.end}/${blob.size}`,
        'Content-Length': String(r.end - r.start + 1) } });
}

async function keepAudio(url) {
    const c = await caches.open(AUDIO);
    if (await c.match(url)) {
        return true;
    }
    const res = await fetch(url, { cache: 'no-store' });
    if (res.status !== 200) {
        return false;
    }
    await c.put(url, res);
    const keys = await c.keys();
    for (const k of keys.slice(0, Math.max(0, keys.length - KEEP_EPISODES))) {
        await c.delete(k);
    }
    return true;
}

async function shellResponse(event) {
    const request = event.request;
    const c = await caches.open(SHELL);
    const navigate = request.mode === 'navigate';
    const hit = await c.match(request, { ignoreSearch: true })
        || (navigate ? await c.match('index.html') : undefined);
    const update = fetch(request).then(res => {
        if (res.status === 200 && (navigate || shellUrls.has(request.url))) {
            // a navigation's answer is index.html under another name
            return c.put(navigate ? new URL('index.html', scope).href : request,
                         res.clone()).then(() => res);
        }
        return res;
    });
    if (hit) {
        event.waitUntil(update.catch(() => {}));
        return hit;
    }
    return update;
}

self.addEventListener('fetch', (event) => {
    const request = event.request;
    const url = new URL(request.url);
    if (url.origin !== self.location.origin || request.method !== 'GET') {
        return;
    }
    if (AUDIO_RE.test(url.pathname)) {
        event.respondWith(audioResponse(request));
        return;
    }
    if (url.pathname.startsWith('/v1/') || url.pathname === '/metrics') {
        return;     // the API: always the network
    }
    const navigate = request.mode === 'navigate'
        && (url.pathname === scope.pathname || url.pathname === `${scope.pathname}index.html`);
    if (navigate || shellUrls.has(url.origin + url.pathname)) {
        event.respondWith(shellResponse(event));
    }
});

self.addEventListener('message', (event) => {
    const d = event.data || {};
    if (d.type === 'cache-audio' && typeof d.url === 'string') {
        const url = new URL(d.url, scope);
        if (url.origin !== self.location.origin || !AUDIO_RE.test(url.pathname)) {
            return;
        }
        event.waitUntil(keepAudio(url.href).then(ok => {
            if (ok && event.source) {
                event.source.postMessage({ type: 'audio-cached', url: d.url });
            }
        }).catch(() => {}));
    } else if (d.type === 'forget-audio' && typeof d.url === 'string') {
        event.waitUntil(caches.open(AUDIO).then(c => c.delete(new URL(d.url, scope).href)));
    }
});
