// The podgen HTTP API.  Every failure becomes an ApiError whose message is
// the server's own ({"error":{"message",...}}) or says what went wrong on
// the way; callers show it, never drop it.

export const BASE = '/v1/podcasts';

export const ID_RE = /^pod_[0-9a-f]{20}$/;

export class ApiError extends Error {
    constructor(message, { status = 0, type = null, param = null, code = null,
                           retryAfter = null } = {}) {
        super(message);
        this.name = 'ApiError';
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
        this.retryAfter = retryAfter;
    }
}

function retryAfter(res) {
    const v = Number(res.headers.get('Retry-After'));
    return Number.isFinite(v) && v >= 0 ? v : null;
}

async function errorFrom(res) {
    let body = null;
    try {
        body = await res.json();
    } catch {
        // not JSON: an nginx page, a proxy's answer
    }
    const e = body && body.error;
    if (e && typeof e.message === 'string' && e.message) {
        return new ApiError(e.message, { status: res.status, type: e.type,
                                         param: e.param, code: e.code,
                                         retryAfter: retryAfter(res) });
    }
    return new ApiError(`The server answered ${res.status}`
                        + (res.statusText ? ` ${res.statusText}` : ''),
                        { status: res.status, retryAfter: retryAfter(res) });
}

// fetch() with the API's conventions.  { json } is sent as the body;
// { allow304 } returns a 304 instead of throwing.
export async function request(path, { method = 'GET', json, headers = {},
                                      signal, allow304 = false } = {}) {
    const init = { method, headers: { ...headers }, signal,
                   cache: 'no-store' };
    if (json !== undefined) {
        init.body = JSON.stringify(json);
        init.headers['Content-Type'] = 'application/json';
    }
    let res;
    try {
        res = await fetch(path, init);
    } catch (err) {
        if (err && err.name === 'AbortError') {
            throw err;
        }
        throw new ApiError('The server cannot be reached ('
                           + (err && err.message ? err.message : 'network error')
                           + ')', { code: 'network_error' });
    }
    if (res.status === 304 && allow304) {
        return res;
    }
    if (!res.ok) {
        throw await errorFrom(res);
    }
    return res;
}

async function json(res) {
    try {
        return await res.json();
    } catch {
        throw new ApiError('The server sent a reply that is not JSON',
                           { status: res.status, code: 'bad_reply' });
    }
}

export async function getJSON(path, opts) {
    return json(await request(path, opts));
}

// A source: { url } is fetched by the server, a File is sent as it is.
export async function createSource({ url, file }) {
    if (url !== undefined) {
        return getJSON('/v1/sources', { method: 'POST', json: { url } });
    }
    let res;
    try {
        res = await fetch('/v1/sources', {
            method: 'POST', body: file, cache: 'no-store',
            headers: { 'Content-Type': sourceType(file) }
        });
    } catch (err) {
        throw new ApiError('The server cannot be reached ('
                           + (err && err.message ? err.message : 'network error')
                           + ')', { code: 'network_error' });
    }
    if (!res.ok) {
        throw await errorFrom(res);
    }
    return json(res);
}

// what the browser says, else the file name's extension
export function sourceType(file) {
    const known = ['application/pdf', 'text/html', 'application/xhtml+xml',
                   'text/markdown', 'text/plain'];
    if (known.includes(file.type)) {
        return file.type;
    }
    const ext = (/\.([a-z0-9]+)$/i.exec(file.name || '') || [])[1] || '';
    return { pdf: 'application/pdf', html: 'text/html', htm: 'text/html',
             xhtml: 'application/xhtml+xml', md: 'text/markdown',
             markdown: 'text/markdown', txt: 'text/plain' }[ext.toLowerCase()]
           || file.type || 'application/octet-stream';
}

export function createPodcast(body) {
    return getJSON(BASE, { method: 'POST', json: body });
}

// One status look: { notModified } or { etag, body }.  wait > 0 long-polls.
export async function getPodcast(id, { wait = 0, etag = null, signal } = {}) {
    const headers = {};
    if (etag) {
        headers['If-None-Match'] = etag;
    }
    const q = wait > 0 ? `?wait=${wait}` : '';
    const res = await request(`${BASE}/${id}${q}`, { headers, signal,
                                                     allow304: true });
    if (res.status === 304) {
        return { notModified: true, etag };
    }
    return { notModified: false, etag: res.headers.get('ETag'),
             body: await json(res) };
}

export function listPodcasts({ limit = 100, cursor = null, signal } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (cursor) {
        q.set('cursor', cursor);
    }
    return getJSON(`${BASE}?${q}`, { signal });
}

export async function deletePodcast(id) {
    await request(`${BASE}/${id}`, { method: 'DELETE' });
}

export function transcript(id) {
    return getJSON(`${BASE}/${id}/transcript.json`);
}

export function audioUrl(id) {
    return `${BASE}/${id}/audio`;
}

export function voices() {
    return getJSON('/v1/voices');
}

export async function speech({ input, voice }) {
    const res = await request('/v1/audio/speech', {
        method: 'POST',
        json: { model: 'tts-1', input, voice, response_format: 'mp3' }
    });
    return res.blob();
}

export function metrics({ signal } = {}) {
    return getJSON('/metrics?format=json', { signal });
}

export async function metricsText({ signal } = {}) {
    const res = await request('/metrics', { signal });
    return res.text();
}
