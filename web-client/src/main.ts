// The listening page: Listen streams the microphone to the server and shows its answers as they
// firm up; when live listening cannot work here, an uploaded recording is identified instead.
import { errorOf, explain, clock, type SearchResponse, type ServerMessage } from './api.js';
import { byId, fileDrop, h } from './dom.js';
import { ListenSession } from './listen.js';
import { ResultView } from './results.js';

/** The server's limit for a search upload. */
const MAX_CLIP_BYTES = 10 * 2 ** 20;
const VIBE_OFF = 'The "sounds like" lane is off on this server, so only exact matches are shown.';
const VIBE_SEARCH: Record<string, string> = {
  failed: 'The "sounds like" search failed this time.',
  timeout: 'The "sounds like" search took too long this time.',
};

const listenButton = byId<HTMLButtonElement>('listen');
const keepListening = byId<HTMLInputElement>('continuous');
const hearing = byId('hearing');
const level = byId<HTMLMeterElement>('level');
const elapsed = byId('elapsed');
const notice = byId('notice');
const problem = byId('problem');
const fallback = byId('fallback');
const fallbackWhy = byId('fallback-why');
const upload = byId<HTMLInputElement>('upload');
const showUpload = byId<HTMLButtonElement>('show-upload');
const historySection = byId('history-section');
const history = byId<HTMLOListElement>('history');
const view = new ResultView(byId('answer'), byId('answer-detail'), byId('vibe'));

let session: ListenSession | undefined;

function say(text: string, isProblem = false): void {
  notice.textContent = isProblem ? '' : text;
  problem.textContent = isProblem ? text : '';
}

function idle(): void {
  session = undefined;
  listenButton.textContent = 'Listen';
  listenButton.disabled = false;
  listenButton.setAttribute('aria-pressed', 'false');
  keepListening.disabled = false;
  hearing.hidden = true;
  view.stopClock();
}

function offerUpload(why: string): void {
  fallbackWhy.textContent = why;
  fallback.hidden = false;
  showUpload.hidden = true;
}

function listen(): void {
  const continuous = keepListening.checked;
  say('');
  view.waiting('Asking for the microphone…');
  if (continuous) {
    history.replaceChildren();
    historySection.hidden = false;
  }
  listenButton.textContent = 'Stop';
  listenButton.setAttribute('aria-pressed', 'true');
  keepListening.disabled = true;
  let lastTrack: string | undefined;
  const s = new ListenSession(
    {
      started(lanes) {
        view.waiting('Listening… hold the device near the music.');
        if (lanes.vibe !== 'on') view.vibeOff(VIBE_OFF);
        hearing.hidden = false;
        const from = performance.now();
        const tick = () => {
          if (session !== s) return;
          level.value = s.level();
          elapsed.textContent = `${Math.floor((performance.now() - from) / 1000)} s`;
          requestAnimationFrame(tick);
        };
        tick();
      },
      message(m: ServerMessage) {
        if (m.type === 'result' && m.lane === 'exact' && m.matches[0]) {
          view.exact(m.status, m.matches[0], true);
          const top = m.matches[0].track;
          if (continuous && m.status === 'final' && top.id !== lastTrack) {
            lastTrack = top.id;
            const at = m.changed_at_seconds ?? 0;
            history.append(
              h('li', {}, h('span', { class: 'when' }, clock(at)), ' ', h('span', { class: 'vibe-title' }, top.title), top.artist ? ` · ${top.artist}` : ''),
            );
          }
        } else if (m.type === 'result' && m.lane === 'vibe') {
          view.vibeMatches(m.status, m.matches);
        } else if (m.type === 'no_match') {
          view.noMatch(`Nothing in the catalog matches the ${Math.round(m.heard_seconds)} seconds heard.`, () => session === undefined && listen());
        }
      },
      unavailable(why, detail) {
        idle();
        view.waiting('');
        say(detail, true);
        offerUpload(
          why === 'unreachable'
            ? 'Live listening needs a connection to the server. You can upload a recording instead:'
            : 'Without the microphone, you can upload a recording instead:',
        );
      },
      ended(trouble) {
        idle();
        if (trouble) say(`${trouble} You can listen again, or upload a recording.`, true);
        else say('Stopped listening.');
        if (trouble) showUpload.hidden = false;
      },
    },
    continuous,
  );
  session = s;
  void s.start();
}

listenButton.addEventListener('click', () => {
  if (!session) return listen();
  listenButton.disabled = true;
  listenButton.textContent = 'Stopping…';
  session.stop();
});

showUpload.addEventListener('click', () => {
  offerUpload('Pick or drop a recording of the music:');
  upload.focus();
});

async function identify(file: File): Promise<void> {
  say('');
  if (file.size > MAX_CLIP_BYTES) {
    view.waiting('');
    return say(`${file.name} is too large: a recording can be at most 10 MB.`, true);
  }
  view.waiting(`Identifying ${file.name}…`);
  const form = new FormData();
  form.append('audio', file);
  form.append('mode', 'both');
  let res: Response;
  try {
    res = await fetch('/api/v1/search', { method: 'POST', body: form });
  } catch {
    view.waiting('');
    return say('The server could not be reached. Check the connection and try again.', true);
  }
  if (!res.ok) {
    view.waiting('');
    return say(`${file.name}: ${explain(await errorOf(res))}`, true);
  }
  const body = (await res.json()) as SearchResponse;
  const top = body.exact_matches[0];
  if (top) view.exact('final', top, false);
  else view.noMatch(`Nothing in the catalog matches ${file.name}.`, () => upload.click());
  if (body.lanes.vibe === 'ran') view.vibeMatches('final', body.vibe_matches);
  else view.vibeOff(VIBE_SEARCH[body.lanes.vibe] ?? VIBE_OFF);
}

fileDrop(byId('drop'), upload, (files) => void identify(files[0]!));
view.waiting('Press Listen and hold the device near the music.');
