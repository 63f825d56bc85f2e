// The catalog page: list and search tracks, add tracks with a progress bar per file, delete with
// a confirmation, and the duplicate reports. Adding and deleting need the API key when the server
// has one: it is asked for on the first 401 and kept for the browser session.
import { clock, errorOf, explain, parseError, percent, type Track } from './api.js';
import { byId, fileDrop, h } from './dom.js';

const PAGE = 25;
const KEY_STORE = 'audio-ident-api-key';
const SHOWN_REPORTS = 20;

const tbody = byId<HTMLTableElement>('tracks').tBodies[0]!;
const count = byId('count');
const problem = byId('problem');
const query = byId<HTMLInputElement>('q');
const prev = byId<HTMLButtonElement>('prev');
const next = byId<HTMLButtonElement>('next');
const uploads = byId<HTMLUListElement>('uploads');
const duplicates = byId<HTMLUListElement>('duplicates');
const keyDialog = byId<HTMLDialogElement>('key-dialog');
const keyInput = byId<HTMLInputElement>('key');
const keyWhy = byId('key-why');

let offset = 0;

// --- the API key ---------------------------------------------------------------------------
const storedKey = () => sessionStorage.getItem(KEY_STORE) ?? undefined;
const authHeader = (): Record<string, string> => {
  const k = storedKey();
  return k ? { authorization: `Bearer ${k}` } : {};
};

/** Asks for the key (again); undefined when the person cancels. */
function askKey(why: string): Promise<string | undefined> {
  keyWhy.textContent = why;
  keyInput.value = '';
  keyDialog.showModal();
  return new Promise((resolve) => {
    keyDialog.addEventListener(
      'close',
      () => {
        const key = keyDialog.returnValue === 'ok' ? keyInput.value.trim() : '';
        if (key) sessionStorage.setItem(KEY_STORE, key);
        resolve(key || undefined);
      },
      { once: true },
    );
  });
}

const keyWanted = () =>
  storedKey() ? 'The server did not accept that API key. Please enter it again.' : 'Adding and deleting tracks needs the server’s API key.';

// --- tracks ----------------------------------------------------------------------------------
async function load(): Promise<void> {
  const q = query.value.trim();
  const params = new URLSearchParams({ limit: String(PAGE), offset: String(offset) });
  if (q) params.set('q', q);
  let res: Response;
  try {
    res = await fetch(`/api/v1/tracks?${params}`);
  } catch {
    problem.textContent = 'The server could not be reached.';
    return;
  }
  if (!res.ok) {
    problem.textContent = explain(await errorOf(res));
    return;
  }
  const { tracks, total } = (await res.json()) as { tracks: Track[]; total: number };
  if (tracks.length === 0 && offset > 0) {
    offset = Math.max(0, offset - PAGE);
    return load();
  }
  tbody.replaceChildren(...tracks.map(row));
  count.textContent =
    total === 0
      ? q
        ? `No track matches “${q}”.`
        : 'The catalog is empty.'
      : `Tracks ${offset + 1}–${offset + tracks.length} of ${total}${q ? ` matching “${q}”` : ''}.`;
  prev.disabled = offset === 0;
  next.disabled = offset + tracks.length >= total;
}

function row(t: Track): HTMLTableRowElement {
  const del = h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${t.title}` }, 'Delete');
  del.addEventListener('click', () => void remove(t));
  return h(
    'tr',
    { 'data-id': t.id },
    h('td', {}, h('span', { class: 'vibe-title' }, t.title), h('span', { class: 'file' }, t.file_name)),
    h('td', {}, t.artist ?? '—'),
    h('td', {}, t.album ?? '—'),
    h('td', {}, clock(t.duration_seconds)),
    h('td', {}, del),
  );
}

async function remove(t: Track): Promise<void> {
  if (!confirm(`Delete “${t.title}” from the catalog? Its fingerprints and stored file are removed too.`)) return;
  problem.textContent = '';
  for (;;) {
    const res = await fetch(`/api/v1/tracks/${encodeURIComponent(t.id)}`, { method: 'DELETE', headers: authHeader() }).catch(() => undefined);
    if (!res) {
      problem.textContent = 'The server could not be reached.';
      return;
    }
    if (res.status === 401) {
      if (await askKey(keyWanted())) continue;
      problem.textContent = `“${t.title}” was not deleted: the API key is needed.`;
      return;
    }
    if (!res.ok && res.status !== 404) {
      problem.textContent = explain(await errorOf(res));
      return;
    }
    await load();
    count.textContent = `Deleted “${t.title}”. ${count.textContent}`;
    return;
  }
}

// --- uploads ---------------------------------------------------------------------------------
interface Sent {
  status: number;
  body: string;
}

/** One file in one request, so that each has its own progress. */
function send(file: File, bar: HTMLProgressElement, state: HTMLElement): Promise<Sent | undefined> {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/tracks');
    for (const [k, v] of Object.entries(authHeader())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) bar.value = e.loaded / e.total;
    };
    xhr.upload.onload = () => {
      bar.value = 1;
      state.textContent = 'Fingerprinting…';
    };
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText });
    xhr.onerror = () => resolve(undefined);
    const form = new FormData();
    form.append('file', file);
    xhr.send(form);
  });
}

interface UploadResult {
  tracks: { status: 'created' | 'duplicate' | 'failed'; track?: Track; duplicate_of?: { reason: string }; error?: { code: string; message: string } }[];
}

function outcome(r: Sent): string {
  if (r.status >= 400) return `Not added: ${explain(parseError(r.status, r.body))}`;
  const [t] = (JSON.parse(r.body) as UploadResult).tracks;
  if (t?.status === 'created') return `Added as “${t.track!.title}”.`;
  if (t?.status === 'duplicate') {
    const how = t.duplicate_of?.reason === 'same_file' ? 'the same file as' : 'another copy of';
    return `Not added: it is ${how} “${t.track!.title}”, already in the catalog.`;
  }
  return `Not added: ${t?.error ? explain(t.error) : 'the server gave no reason.'}`;
}

async function addFiles(files: File[]): Promise<void> {
  const rows = files.map((f) => {
    const bar = h('progress', { max: 1, value: 0, 'aria-label': `Upload of ${f.name}` });
    const state = h('span', { class: 'state' }, 'Waiting…');
    uploads.append(h('li', {}, h('span', { class: 'file' }, f.name), bar, state));
    return { f, bar, state };
  });
  // One at a time: the server fingerprints each on its cores, and the bars then mean something.
  for (const { f, bar, state } of rows) {
    state.textContent = 'Uploading…';
    let r = await send(f, bar, state);
    while (r?.status === 401 && (await askKey(keyWanted()))) {
      bar.value = 0;
      state.textContent = 'Uploading…';
      r = await send(f, bar, state);
    }
    state.textContent = !r ? 'Not added: the server could not be reached.' : r.status === 401 ? 'Not added: the API key is needed.' : outcome(r);
    state.parentElement!.dataset.done = !r || r.status >= 300 ? 'failed' : r.status === 201 ? 'added' : 'duplicate';
  }
  await Promise.all([load(), loadDuplicates()]);
}

// --- duplicate reports -----------------------------------------------------------------------
interface Report {
  file_name: string;
  duplicate_of: string;
  reason: 'same_file' | 'same_recording';
  confidence: number;
  reported_at: string;
}

async function loadDuplicates(): Promise<void> {
  const res = await fetch('/api/v1/duplicates').catch(() => undefined);
  if (!res?.ok) {
    duplicates.replaceChildren(h('li', {}, 'The duplicate reports could not be loaded.'));
    return;
  }
  const reports = ((await res.json()) as { reports: Report[] }).reports.slice(0, SHOWN_REPORTS);
  const ids = [...new Set(reports.map((r) => r.duplicate_of))];
  const titles = new Map(
    await Promise.all(
      ids.map(async (id) => {
        const t = await fetch(`/api/v1/tracks/${id}`)
          .then((r) => (r.ok ? (r.json() as Promise<Track>) : undefined))
          .catch(() => undefined);
        return [id, t ? `“${t.title}”` : 'a track since deleted'] as const;
      }),
    ),
  );
  duplicates.replaceChildren(
    ...(reports.length
      ? reports.map((r) =>
          h(
            'li',
            {},
            h('span', { class: 'file' }, r.file_name),
            ` ${r.reason === 'same_file' ? 'is the same file as' : `is another copy of (${percent(r.confidence)} sure)`} ${titles.get(r.duplicate_of)}, `,
            h('time', { datetime: r.reported_at }, new Date(r.reported_at).toLocaleString()),
          ),
        )
      : [h('li', { class: 'hint' }, 'No duplicates reported.')]),
  );
}

// --- wiring ----------------------------------------------------------------------------------
let typing: number | undefined;
query.addEventListener('input', () => {
  window.clearTimeout(typing);
  typing = window.setTimeout(() => {
    offset = 0;
    void load();
  }, 250);
});
byId('search').addEventListener('submit', (e) => {
  e.preventDefault();
  offset = 0;
  void load();
});
prev.addEventListener('click', () => {
  offset = Math.max(0, offset - PAGE);
  void load();
});
next.addEventListener('click', () => {
  offset += PAGE;
  void load();
});
fileDrop(byId('drop'), byId<HTMLInputElement>('files'), (files) => void addFiles(files));
void load();
void loadDuplicates();
