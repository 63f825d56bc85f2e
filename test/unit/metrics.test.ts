// The Prometheus text exposition of counters, histograms and gauges.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/http/metrics.js';

/** Sample lines (not comments) as name{labels} -> value. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

describe('Metrics', () => {
  it('renders counters with HELP, TYPE and one series per label set', () => {
    const m = new Metrics();
    m.inc('http_requests_total', 'HTTP requests', { route: '/a', status: '200' });
    m.inc('http_requests_total', 'HTTP requests', { route: '/a', status: '200' });
    m.inc('http_requests_total', 'HTTP requests', { route: '/b', status: '404' }, 5);
    m.inc('jobs_total', 'Jobs');
    const text = m.render();
    assert.ok(text.endsWith('\n'));
    assert.match(text, /^# HELP http_requests_total HTTP requests\n# TYPE http_requests_total counter\n/);
    assert.deepEqual(
      [...samples(text)],
      [
        ['http_requests_total{route="/a",status="200"}', '2'],
        ['http_requests_total{route="/b",status="404"}', '5'],
        ['jobs_total', '1'],
      ],
    );
  });

  it('renders cumulative histogram buckets, +Inf equal to the count', () => {
    const m = new Metrics();
    for (const s of [0.003, 0.07, 0.5, 3, 20]) m.observe('latency_seconds', 'Latency', { route: '/x' }, s);
    const text = m.render();
    assert.match(text, /# TYPE latency_seconds histogram\n/);
    const s = samples(text);
    const bucket = (le: string) => Number(s.get(`latency_seconds_bucket{route="/x",le="${le}"}`));
    assert.equal(bucket('0.005'), 1);
    assert.equal(bucket('0.05'), 1);
    assert.equal(bucket('0.1'), 2);
    assert.equal(bucket('0.5'), 3); // le is inclusive
    assert.equal(bucket('2.5'), 3);
    assert.equal(bucket('5'), 4);
    assert.equal(bucket('10'), 4);
    assert.equal(bucket('+Inf'), 5);
    assert.equal(s.get('latency_seconds_count{route="/x"}'), '5');
    assert.ok(Math.abs(Number(s.get('latency_seconds_sum{route="/x"}')) - 23.573) < 1e-9);
    // Every bucket at least the one before it, ending at +Inf.
    const counts = [...s].filter(([k]) => k.startsWith('latency_seconds_bucket')).map(([, v]) => Number(v));
    assert.ok(counts.every((c, i) => i === 0 || c >= counts[i - 1]!));
    assert.equal(counts.at(-1), 5);
  });

  it('renders a histogram without labels with only le', () => {
    const m = new Metrics();
    m.observe('t_seconds', 'T', {}, 0.2);
    const s = samples(m.render());
    assert.equal(s.get('t_seconds_bucket{le="0.25"}'), '1');
    assert.equal(s.get('t_seconds_bucket{le="+Inf"}'), '1');
    assert.equal(s.get('t_seconds_count'), '1');
  });

  it('reads gauges when rendering, not when registering', () => {
    const m = new Metrics();
    let sessions = 1;
    m.gauge('sessions', 'Open sessions', () => sessions);
    assert.match(m.render(), /# TYPE sessions gauge\nsessions 1\n/);
    sessions = 42;
    assert.equal(samples(m.render()).get('sessions'), '42');
  });

  it('escapes backslash, double quote and newline in label values', () => {
    const m = new Metrics();
    m.inc('odd_total', 'Odd labels', { v: 'a\\b"c\nd' });
    assert.equal(samples(m.render()).get('odd_total{v="a\\\\b\\"c\\nd"}'), '1');
  });
});
