/**
 * Status in household words: one pure function turns a BoxStatus into what the page (and the live
 * updates over Server-Sent Events) show, so the server-rendered page and the script never disagree.
 */
import type { BoxStatus, CircuitInfo, DropCounters } from '../../firmware/box/api.js';

export type Tone = 'ok' | 'wait' | 'stop' | 'bad';

export interface StatusView {
  state: BoxStatus['state'];
  tone: Tone;
  headline: string;
  explanation: string;
  /** Something the owner should know happened (the box's own words), else null. */
  alert: string | null;
  /** Bootstrap progress 0-100 while connecting, else null. */
  progress: number | null;
  /** True while the page should refresh itself (no JS) because something is about to change. */
  transient: boolean;
  torSummary: string;
  warnings: string[];
  hardwareSwitch: string;
  softwareSwitch: string;
  softKill: boolean;
  uptime: string;
  /** The connection assist in words (why tor does not connect, which bridge it tries), or '' for none. */
  assist: string;
  /** Steps the assist left out, with why (Moat not built, snowflake not working yet). */
  assistSkipped: string[];
  /** The owner's own bridges do not get through: the page offers to let the box try its own. */
  askOwner: boolean;
}

/** The assist's words when they add something to the headline ('' while tor simply connects or routes). */
function assistWords(s: BoxStatus): string {
  const a = s.assist;
  if (a === undefined || a.phase === 'connecting') return '';
  if (a.phase === 'connected') return a.words.startsWith('Connected through') ? a.words : '';
  return a.words;
}

export function describeStatus(s: BoxStatus): StatusView {
  const progress = Math.max(0, Math.min(100, Math.round(s.tor.progress)));
  let tone: Tone;
  let headline: string;
  switch (s.state) {
    case 'booting':
      tone = 'wait';
      headline = 'Starting up';
      break;
    case 'connecting':
      tone = 'wait';
      headline = `Connecting to Tor: ${progress} %`;
      break;
    case 'routing':
      tone = 'ok';
      headline = 'Protected: your devices reach the internet only through Tor';
      break;
    case 'killed':
      tone = 'stop';
      headline = s.killSwitch.hardware
        ? 'Cut off by the switch on the box'
        : 'Cut off from this page (kill switch)';
      break;
    case 'tor-down':
      tone = 'bad';
      headline = 'Tor is not running: devices are cut off';
      break;
    default:
      tone = 'bad';
      headline = 'Something went wrong: devices are cut off';
  }
  return {
    state: s.state,
    tone,
    headline,
    explanation: s.explanation,
    alert: s.alert ?? null,
    progress: s.state === 'connecting' || s.state === 'booting' ? progress : null,
    transient: s.state === 'connecting' || s.state === 'booting',
    torSummary: s.tor.summary,
    warnings: [...new Set(s.tor.lastWarnings)].slice(-5),
    hardwareSwitch: s.killSwitch.hardware
      ? 'On: every device is cut off until you flip it back'
      : 'Off: devices may go online through Tor',
    softwareSwitch: s.killSwitch.software ? 'On: devices are cut off from this page' : 'Off',
    softKill: s.killSwitch.software,
    uptime: formatUptime(s.uptimeSeconds),
    assist: assistWords(s),
    assistSkipped: s.assist && assistWords(s) !== '' ? [...s.assist.skipped] : [],
    askOwner: s.assist?.askOwner === true,
  };
}

export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86_400);
  const h = Math.floor((s % 86_400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const plural = (n: number, w: string) => `${n} ${w}${n === 1 ? '' : 's'}`;
  if (d > 0) return `${plural(d, 'day')}, ${plural(h, 'hour')}`;
  if (h > 0) return `${plural(h, 'hour')}, ${plural(m, 'minute')}`;
  if (m > 0) return plural(m, 'minute');
  return plural(s, 'second');
}

export interface CircuitView {
  id: string;
  purpose: string;
  path: string;
}

export function describeCircuits(circuits: CircuitInfo[]): CircuitView[] {
  return circuits
    .filter((c) => c.status === 'BUILT')
    .slice(0, 10)
    .map((c) => ({
      id: c.id,
      purpose: c.purpose === 'GENERAL' ? 'Web and apps' : c.purpose.toLowerCase().replaceAll('_', ' '),
      path: c.hops
        .map(
          (h) =>
            `${h.nickname || h.fingerprint.slice(0, 8)}${h.country ? ` (${h.country.toUpperCase()})` : ''}`,
        )
        .join(' → '),
    }));
}

const COUNTER_WORDS: Record<string, string> = {
  ipv6: 'IPv6 packets',
  udp: 'UDP packets (other than DNS)',
  icmp: 'Ping and other ICMP',
  invalid: 'Broken or out-of-state packets',
  other: 'Other traffic',
};

export function describeCounters(counters: DropCounters): { label: string; packets: number }[] {
  return Object.entries(counters).map(([name, c]) => ({
    label: COUNTER_WORDS[name] ?? name,
    packets: c.packets,
  }));
}
