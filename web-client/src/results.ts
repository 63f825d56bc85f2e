// Shows answers the same way whether they come from live listening or from an uploaded clip: the
// exact answer (tentative, then firm; its position moving along while listening) and the vibe
// matches beside it. Only changes of answer go to the live region, so a screen reader hears a new
// track once, not every position tick.
import { byline, clock, percent, type ExactMatch, type Status, type VibeMatch } from './api.js';
import { h } from './dom.js';

const TICK_MS = 250;

export class ResultView {
  private shown: string | undefined; // status and track id the live region announces now
  private confidence: HTMLElement | undefined;
  private position: HTMLElement | undefined;
  private clockAt: { seconds: number; at: number; duration: number } | undefined;
  private ticker: number | undefined;

  constructor(
    private readonly answer: HTMLElement,
    private readonly detail: HTMLElement,
    private readonly vibe: HTMLElement,
  ) {}

  /** Empty, with a line saying what is going on (or nothing). */
  waiting(text: string): void {
    this.stopClock();
    this.shown = undefined;
    this.answer.dataset.status = 'waiting';
    this.answer.replaceChildren(text ? h('p', { class: 'hint' }, text) : '');
    this.detail.replaceChildren();
    this.vibe.dataset.status = 'waiting';
    this.vibe.replaceChildren();
  }

  /**
   * The best exact match. `moving`: the position goes on in real time from the match's
   * position_seconds (live); otherwise it is where the clip starts in the track (upload).
   */
  exact(status: Status, m: ExactMatch, moving: boolean): void {
    const key = `${status} ${m.track.id}`;
    if (key !== this.shown) {
      this.shown = key;
      this.answer.dataset.status = status;
      this.answer.replaceChildren(
        h('p', { class: `status ${status}` }, status === 'provisional' ? 'Possibly… (still making sure)' : moving ? 'Playing now' : 'Identified'),
        h('h3', { class: 'title' }, m.track.title),
        h('p', { class: 'byline' }, byline(m.track) || 'Artist and album unknown'),
      );
      this.confidence = h('dd', {});
      this.position = h('dd', { role: 'timer', 'aria-live': 'off' });
      this.detail.replaceChildren(h('dl', {}, h('dt', {}, 'Confidence'), this.confidence, h('dt', {}, moving ? 'Position' : 'Clip starts at'), this.position));
    }
    this.confidence!.textContent = percent(m.confidence);
    const seconds = moving ? (m.position_seconds ?? m.offset_seconds) : m.offset_seconds;
    this.clockAt = { seconds, at: performance.now(), duration: m.track.duration_seconds };
    this.renderClock();
    if (moving) this.ticker ??= window.setInterval(() => this.renderClock(), TICK_MS);
    else this.stopClock();
  }

  /** The session or the search ended without an answer. */
  noMatch(detail: string, retry: () => void): void {
    this.stopClock();
    this.shown = 'none';
    this.answer.dataset.status = 'no-match';
    const again = h('button', { type: 'button', class: 'secondary' }, 'Try again');
    again.addEventListener('click', retry);
    this.answer.replaceChildren(h('p', { class: 'status none' }, 'No match'), h('p', {}, detail), again);
    this.detail.replaceChildren();
    again.focus();
  }

  vibeMatches(status: Status, matches: VibeMatch[]): void {
    this.vibe.dataset.status = status;
    if (!matches.length) {
      this.vibe.replaceChildren(h('p', { class: 'hint' }, 'Nothing in the catalog sounds close enough.'));
      return;
    }
    this.vibe.replaceChildren(
      status === 'provisional' ? h('p', { class: 'status provisional' }, 'First impressions (still listening)') : '',
      h(
        'ol',
        { class: 'vibe-list' },
        ...matches.map((v) =>
          h(
            'li',
            {},
            h('span', { class: 'vibe-title' }, v.track.title),
            v.track.artist ? h('span', { class: 'byline' }, ` · ${v.track.artist}`) : '',
            h('span', { class: 'similarity' }, ` ${percent(v.similarity)} alike`),
            v.tags.length ? h('span', { class: 'tags' }, ...v.tags.map((t) => h('span', { class: 'tag' }, t))) : '',
          ),
        ),
      ),
    );
  }

  /** The server runs no vibe lane: say so instead of an empty box. */
  vibeOff(why: string): void {
    this.vibe.dataset.status = 'off';
    this.vibe.replaceChildren(h('p', { class: 'hint' }, why));
  }

  /** Listening ended: the position stops where it is. */
  stopClock(): void {
    if (this.ticker !== undefined) window.clearInterval(this.ticker);
    this.ticker = undefined;
  }

  private renderClock(): void {
    if (!this.clockAt || !this.position) return;
    const { seconds, at, duration } = this.clockAt;
    const now = this.ticker === undefined ? seconds : seconds + (performance.now() - at) / 1000;
    this.position.textContent = `${clock(Math.min(duration, now))} / ${clock(duration)}`;
  }
}
