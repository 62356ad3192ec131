/**
 * The OLED's screens, drawn by one pure function from the state machine's Screen (plus the LAN address
 * and claim code the controller adds). Layout on 128x64, 5x7 font (21 characters a line):
 *   y 0-13   headline at double size (BOOTING, CONNECTING, ROUTING, KILLED, TOR DOWN, ERROR)
 *   y 17-24  bootstrap progress bar with percentage while connecting; else the detail line
 *   y 28     detail (tor's summary, the fault, why killed) when the bar is shown, else blank; while
 *            connecting, the connection assist's line instead when it has one ("blocked: try 2/4",
 *            "no network: cable?", "clock wrong: fixing")
 *   y 37     kill switch: on / off / BROKEN, and "web: on" for the page's kill switch
 *   y 46     web page address
 *   y 55     claim code while unclaimed, and the id of the claim a press would approve
 *            ("code K7P2QXWM id K7P2": 8 + 4 characters fit the 21 with single spaces); once claimed,
 *            the updater's warning ("UPDATE: tor outdated", "UPDATE: software old")
 *   y 46-55  for a few seconds after a refused press, instead of the two lines above:
 *            "press refused:" and why ("more than one claim", "claim id too new")
 */
import type { Screen } from '../../firmware/state/machine.js';
import { charsPerLine, Framebuffer, WIDTH } from './framebuffer.js';

const HEADLINES: Record<Screen['state'], string> = {
  booting: 'BOOTING',
  connecting: 'CONNECTING',
  routing: 'ROUTING',
  killed: 'KILLED',
  'tor-down': 'TOR DOWN',
  error: 'ERROR',
};

function fit(text: string, chars = charsPerLine()): string {
  const clean = text.replace(/[^\x20-\x7e]/g, '?');
  return clean.length <= chars ? clean : `${clean.slice(0, chars - 1)}.`;
}

function switchLine(screen: Screen): string {
  const hw = screen.killSwitch === 'engaged' ? 'ON' : screen.killSwitch === 'released' ? 'off' : 'BROKEN';
  return `switch: ${hw}${screen.softKill ? '  web: ON' : ''}`;
}

export function renderScreen(screen: Screen, fb: Framebuffer = new Framebuffer()): Framebuffer {
  fb.clear();
  const headline = HEADLINES[screen.state] ?? 'ERROR';
  const scale = headline.length <= charsPerLine(2) ? 2 : 1;
  const hx = Math.max(0, Math.floor((WIDTH - (headline.length * 6 * scale - scale)) / 2));
  fb.drawText(headline, hx, 0, scale);
  if (screen.state === 'routing') fb.fillRect(0, 15, WIDTH, 1);
  if (screen.progress !== null) {
    const pct = Math.max(0, Math.min(100, Math.round(screen.progress)));
    const label = `${pct}%`;
    const barWidth = WIDTH - 6 * 4 - 2;
    fb.strokeRect(0, 17, barWidth, 8);
    fb.fillRect(2, 19, Math.round(((barWidth - 4) * pct) / 100), 4);
    fb.drawText(label, WIDTH - (label.length * 6 - 1), 18);
    fb.drawText(fit(screen.assist ?? screen.detail), 0, 28);
  } else {
    fb.drawText(fit(screen.detail), 0, 19);
  }
  fb.drawText(fit(switchLine(screen)), 0, 37);
  const notice = screen.claimCode !== null ? (screen.claimNotice ?? null) : null;
  if (notice !== null) {
    const split = notice.indexOf(':');
    const [first, second] =
      split < 0 ? [notice, ''] : [notice.slice(0, split + 1), notice.slice(split + 1).trim()];
    fb.drawText(fit(first), 0, 46);
    fb.drawText(fit(second), 0, 55);
    return fb;
  }
  fb.drawText(fit(`web: ${screen.lanAddress}`), 0, 46);
  if (screen.claimCode !== null) {
    const line = screen.claimId
      ? `code ${screen.claimCode} id ${screen.claimId}`
      : `claim code: ${screen.claimCode}`;
    fb.drawText(fit(line), 0, 55);
  } else if (screen.updateWarning) {
    fb.drawText(fit(screen.updateWarning), 0, 55);
  }
  return fb;
}
