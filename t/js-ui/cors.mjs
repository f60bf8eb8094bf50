// A page on another origin calls podgen through CORS, in headless Chromium
// (Debian's, driven by playwright-core).
//
//   node cors.mjs PAGE_URL API_BASE
//
// PAGE_URL is a page of one origin (http://localhost:PORT/...), API_BASE
// podgen on another (http://127.0.0.1:PORT).  The page's fetch() calls
// run in the browser, preflight and all; prints one JSON line with what
// the page could see.
import { chromium } from 'playwright-core';

const [pageUrl, api] = process.argv.slice(2);
const browser = await chromium.launch({
    executablePath: process.env.PODGEN_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox']
});
try {
    const page = await browser.newPage();
    await page.goto(pageUrl);
    const seen = await page.evaluate(async api => {
        const out = { origin: location.origin };
        const post = (path, body, headers = {}) => fetch(api + path, {
            method: 'POST',
            headers: Object.assign({ 'Content-Type': 'application/json',
                                     'Authorization': 'Bearer sk-test-key-123' },
                                   headers),
            body: JSON.stringify(body)
        });
        try {
            const r = await post('/v1/keyed', { model: 'tts-1', voice: 'alloy',
                input: 'Hello from another origin.', response_format: 'wav' });
            const buf = await r.arrayBuffer();
            out.speech = {
                status: r.status,
                bytes: buf.byteLength,
                request_id: r.headers.get('x-request-id'),
                cache: r.headers.get('x-podgen-cache'),
                audio_url: r.headers.get('x-podgen-audio-url'),
                server_timing: r.headers.get('server-timing')
            };
        } catch (e) {
            out.speech = { error: String(e) };
        }
        try {
            const r = await post('/v1/keyed', { model: 'tts-1', voice: 'bob',
                input: 'Hi.' });
            out.error = { status: r.status, body: await r.json() };
        } catch (e) {
            out.error = { error: String(e) };
        }
        try {
            const r = await fetch(api + '/v1/models');
            out.models = { status: r.status, body: await r.json() };
        } catch (e) {
            out.models = { error: String(e) };
        }
        try {
            const r = await fetch(api + '/v1/voices');
            out.closed = { status: r.status };
        } catch (e) {
            out.closed = { error: String(e) };
        }
        return out;
    }, api);
    console.log(JSON.stringify(seen));
} finally {
    await browser.close();
}
