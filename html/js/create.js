// The create form: topic and/or source text, style, length, 1 to 6 hosts
// with a voice picker (from GET /v1/voices) and a voice preview
// (POST /v1/audio/speech).  Validation is the server's: its message is
// shown in the form's alert region and the field it names is marked.

import * as api from './api.js';
import { el, $, showError, clearError, announce } from './ui.js';
import { track } from './jobs.js';

const MAX_HOSTS = 6;
const DEFAULT_HOSTS = [
    { name: 'Ada', voice: 'alloy', role: 'host' },
    { name: 'Ben', voice: 'echo', role: 'guest' },
    { name: 'Cleo', voice: 'fable', role: 'expert' },
    { name: 'Dev', voice: 'onyx', role: 'skeptic' },
    { name: 'Eve', voice: 'nova', role: 'guest' },
    { name: 'Finn', voice: 'sage', role: 'guest' }
];
// what the server is known to speak when /v1/voices cannot be read
const FALLBACK_VOICES = [
    { name: 'slt', sample_rate: 16000, aliases: ['alloy', 'coral', 'nova', 'shimmer'] },
    { name: 'rms', sample_rate: 16000, aliases: ['ash', 'echo', 'onyx'] },
    { name: 'awb', sample_rate: 16000, aliases: ['ballad', 'fable'] },
    { name: 'kal16', sample_rate: 16000, aliases: ['sage', 'verse'] }
];

let voiceList = FALLBACK_VOICES;
let readSource = null;      // the document read: { id, title, word_count }
let seq = 0;
let form, hostList, addBtn, errBox, submitBtn;
const preview = new Audio();
let previewUrl = null;

function voiceOptions(select, chosen) {
    select.textContent = '';
    const aliases = el('optgroup', { label: 'OpenAI voice names' });
    const flite = el('optgroup', { label: 'flite voices' });
    const names = [];
    for (const v of voiceList) {
        for (const a of v.aliases || []) {
            names.push([a, v]);
        }
    }
    names.sort((x, y) => x[0].localeCompare(y[0]));
    for (const [a, v] of names) {
        aliases.append(el('option', { value: a }, `${a} (${v.name})`));
    }
    for (const v of voiceList) {
        const khz = v.sample_rate ? `, ${v.sample_rate / 1000} kHz` : '';
        flite.append(el('option', { value: v.name }, `${v.name}${khz}`));
    }
    if (names.length) {
        select.append(aliases);
    }
    select.append(flite);
    select.value = chosen;
    if (select.value !== chosen) {
        select.selectedIndex = 0;
    }
}

function hostRows() {
    return [...hostList.querySelectorAll('li.host')];
}

function renumber() {
    const rows = hostRows();
    rows.forEach((li, i) => {
        li.querySelector('.host-head').textContent = `Host ${i + 1}`;
        li.querySelector('.remove').disabled = rows.length <= 1;
        li.querySelector('.remove .vh').textContent = ` host ${i + 1}`;
        li.querySelector('.preview .vh').textContent = ` of host ${i + 1}`;
    });
    addBtn.disabled = rows.length >= MAX_HOSTS;
}

function addHost(h) {
    const n = ++seq;
    const name = el('input', { id: `host-name-${n}`, type: 'text', class: 'host-name',
                               value: h.name, autocomplete: 'off', maxlength: 64 });
    const voice = el('select', { id: `host-voice-${n}`, class: 'host-voice' });
    const role = el('input', { id: `host-role-${n}`, type: 'text', class: 'host-role',
                               value: h.role, list: 'roles', autocomplete: 'off',
                               maxlength: 64 });
    voiceOptions(voice, h.voice);

    const prev = el('button', { type: 'button', class: 'secondary preview' },
                    'Preview voice', el('span', { class: 'vh' }));
    const rm = el('button', { type: 'button', class: 'danger remove' },
                  'Remove', el('span', { class: 'vh' }));

    const li = el('li', { class: 'host' },
        el('p', { class: 'host-head' }),
        el('div', { class: 'field' }, el('label', { for: name.id }, 'Name'), name),
        el('div', { class: 'field' }, el('label', { for: voice.id }, 'Voice'), voice),
        el('div', { class: 'field' }, el('label', { for: role.id }, 'Role'), role),
        el('div', { class: 'host-actions' }, prev, rm));

    prev.addEventListener('click', () => previewVoice(prev, voice.value, name.value));
    rm.addEventListener('click', () => {
        const rows = hostRows();
        const i = rows.indexOf(li);
        li.remove();
        renumber();
        const left = hostRows();
        const near = left[Math.min(i, left.length - 1)];
        (near ? near.querySelector('.host-name') : addBtn).focus();
        announce(`Host removed; ${left.length} left`);
    });

    hostList.append(li);
    renumber();
    return li;
}

async function previewVoice(btn, voice, name) {
    clearError(errBox);
    preview.pause();
    btn.disabled = true;
    btn.setAttribute('aria-busy', 'true');
    try {
        const who = name.trim() ? name.trim() : 'your host';
        const blob = await api.speech({
            input: `Hello, I'm ${who}. This is the ${voice} voice.`, voice
        });
        if (previewUrl) {
            URL.revokeObjectURL(previewUrl);
        }
        previewUrl = URL.createObjectURL(blob);
        preview.src = previewUrl;
        await preview.play();
        announce(`Playing a preview of the ${voice} voice`);
    } catch (err) {
        if (err.name === 'NotAllowedError') {
            showError(errBox, 'The browser did not allow the preview to play');
        } else {
            showError(errBox, err, 'Voice preview failed');
        }
    } finally {
        btn.disabled = false;
        btn.removeAttribute('aria-busy');
    }
}

function requestBody() {
    const body = {
        style: $('#style').value,
        length: $('#length').value,
        format: $('#format').value,
        engine: $('#engine').value,
        hosts: hostRows().map(li => {
            const h = {
                name: li.querySelector('.host-name').value.trim(),
                voice: li.querySelector('.host-voice').value
            };
            const role = li.querySelector('.host-role').value.trim();
            if (role) {
                h.role = role;
            }
            return h;
        })
    };
    const topic = $('#topic').value.trim();
    const source = $('#source').value.trim();
    const title = $('#title').value.trim();
    if (topic) {
        body.topic = topic;
    }
    if (source) {
        body.source_text = source;
    }
    if (readSource) {
        body.source_ids = [readSource.id];
    }
    if (title) {
        body.title = title;
    }
    return body;
}

// The control an error's "param" names: topic, hosts[1].voice, ...
function fieldOf(param) {
    if (!param) {
        return null;
    }
    const m = /^hosts\[(\d+)\](?:\.(name|voice|role))?$/.exec(param);
    if (m) {
        const li = hostRows()[Number(m[1])];
        return li ? li.querySelector(`.host-${m[2] || 'name'}`) : null;
    }
    if (/^source_ids/.test(param)) {
        return document.getElementById('source-file');
    }
    const ids = { topic: 'topic', source_text: 'source', title: 'title', style: 'style',
                  length: 'length', format: 'format', engine: 'engine',
                  hosts: 'add-host' };
    return ids[param] ? document.getElementById(ids[param]) : null;
}

function clearInvalid() {
    for (const e of form.querySelectorAll('[aria-invalid]')) {
        e.removeAttribute('aria-invalid');
        e.removeAttribute('aria-errormessage');
    }
    for (const e of form.querySelectorAll('.field-error')) {
        e.remove();
    }
}

// The message also goes beside the field it names (the alert region by
// the button may be out of view when the field takes the focus).
function markInvalid(f, message) {
    const msg = el('p', { class: 'field-error', id: 'create-field-error' }, message);
    f.insertAdjacentElement('afterend', msg);
    f.setAttribute('aria-invalid', 'true');
    f.setAttribute('aria-errormessage', 'create-field-error');
    f.focus();
}


// A URL or a file is read by the server (POST /v1/sources) before the
// podcast is made; its title and word count show, its errors go beside the
// field that gave it.
function showSource(s) {
    const box = $('#source-read');
    box.textContent = '';
    readSource = s;
    if (!s) {
        return;
    }
    const rm = el('button', { type: 'button', class: 'secondary remove-source' },
                  'Remove');
    rm.addEventListener('click', () => {
        showSource(null);
        $('#source-file').value = '';
        $('#source-url').value = '';
        announce('Source removed');
        $('#source-url').focus();
    });
    box.append(el('strong', {}, s.title || 'Untitled document'),
               ` \u2014 ${s.word_count} words, read`, rm);
}

async function readDocument(what, control, btn) {
    clearError(errBox);
    clearInvalid();
    showSource(null);
    if (btn) {
        btn.disabled = true;
        btn.setAttribute('aria-busy', 'true');
    }
    $('#source-read').textContent = 'Reading the document\u2026';
    try {
        const s = await api.createSource(what);
        showSource(s);
    } catch (err) {
        $('#source-read').textContent = '';
        markInvalid(control, err.message);
    } finally {
        if (btn) {
            btn.disabled = false;
            btn.removeAttribute('aria-busy');
        }
    }
}

async function submit(ev) {
    ev.preventDefault();
    if (submitBtn.disabled) {
        return;
    }
    clearError(errBox);
    clearInvalid();
    const body = requestBody();
    submitBtn.disabled = true;
    submitBtn.setAttribute('aria-busy', 'true');
    submitBtn.textContent = 'Creating…';
    try {
        const job = await api.createPodcast(body);
        const label = body.title || body.topic
                      || (readSource && readSource.title)
                      || 'Podcast from a source text';
        const li = track(job.id, job, label);
        li.scrollIntoView({ block: 'nearest' });
        announce(`Podcast queued: ${label}`);
    } catch (err) {
        showError(errBox, err);
        const f = fieldOf(err.param);
        if (f && f.tagName !== 'BUTTON') {
            markInvalid(f, err.message);
        }
    } finally {
        submitBtn.disabled = false;
        submitBtn.removeAttribute('aria-busy');
        submitBtn.textContent = 'Create podcast';
    }
}

async function loadVoices() {
    try {
        const r = await api.voices();
        if (Array.isArray(r.data) && r.data.length) {
            voiceList = r.data;
        }
    } catch (err) {
        showError(errBox, err, 'The voice list could not be loaded (showing the usual voices)');
    }
    for (const s of form.querySelectorAll('select.host-voice')) {
        voiceOptions(s, s.value);
    }
}

export function init() {
    form = $('#create-form');
    hostList = $('#host-list');
    addBtn = $('#add-host');
    errBox = $('#create-error');
    submitBtn = $('#create-submit');

    form.append(el('datalist', { id: 'roles' },
        ...['host', 'co-host', 'guest', 'expert', 'skeptic', 'moderator']
            .map(r => el('option', { value: r }))));

    addHost(DEFAULT_HOSTS[0]);
    addHost(DEFAULT_HOSTS[1]);

    addBtn.addEventListener('click', () => {
        const n = hostRows().length;
        if (n >= MAX_HOSTS) {
            return;
        }
        const li = addHost(DEFAULT_HOSTS[n]);
        li.querySelector('.host-name').focus();
        announce(`Host ${n + 1} added`);
    });
    form.addEventListener('submit', submit);
    $('#source-fetch').addEventListener('click', () => {
        const url = $('#source-url').value.trim();
        if (url) {
            readDocument({ url }, $('#source-url'), $('#source-fetch'));
        }
    });
    $('#source-url').addEventListener('keydown', (e) => {
        if (e.key === 'Enter') {
            e.preventDefault();
            $('#source-fetch').click();
        }
    });
    $('#source-file').addEventListener('change', (e) => {
        const file = e.target.files && e.target.files[0];
        if (file) {
            readDocument({ file }, e.target, null);
        }
    });
    form.addEventListener('input', (e) => {
        if (e.target.getAttribute('aria-invalid')) {
            clearInvalid();
        }
    });
    loadVoices();
}
