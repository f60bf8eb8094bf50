// Small DOM helpers shared by the views.

export function $(sel, root = document) {
    return root.querySelector(sel);
}

// el('button', { class: 'x', type: 'button', onclick: f }, 'text', child)
export function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) {
            continue;
        }
        if (k.startsWith('on') && typeof v === 'function') {
            e.addEventListener(k.slice(2), v);
        } else if (k === 'class') {
            e.className = v;
        } else if (k === 'text') {
            e.textContent = v;
        } else {
            e.setAttribute(k, v === true ? '' : String(v));
        }
    }
    for (const c of children) {
        if (c !== null && c !== undefined && c !== false) {
            e.append(c instanceof Node ? c : String(c));
        }
    }
    return e;
}

// An error goes to a role="alert" region, where it is read out and stays
// until the next attempt.
export function showError(region, err, prefix = '') {
    const msg = err && err.message ? err.message : String(err);
    region.textContent = prefix ? `${prefix}: ${msg}` : msg;
}

export function clearError(region) {
    region.textContent = '';
}

let announceTimer = 0;

// Polite announcements (progress, deletions) for screen readers.
export function announce(text) {
    const a = document.getElementById('announcer');
    if (!a) {
        return;
    }
    clearTimeout(announceTimer);
    a.textContent = '';
    // a new text node after a tick is announced even when it repeats
    announceTimer = setTimeout(() => { a.textContent = text; }, 50);
}

export function clock(s) {
    if (!Number.isFinite(s) || s < 0) {
        return '–';
    }
    s = Math.floor(s);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = String(s % 60).padStart(2, '0');
    return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

const dateFmt = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric',
    hour: '2-digit', minute: '2-digit'
});

export function when(unixSeconds) {
    if (!Number.isFinite(unixSeconds)) {
        return '';
    }
    return dateFmt.format(new Date(unixSeconds * 1000));
}

export function bytes(n) {
    if (!Number.isFinite(n)) {
        return '–';
    }
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
        n /= 1024;
        i++;
    }
    return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function titleOf(job) {
    return job && job.title ? job.title : 'Untitled podcast';
}
