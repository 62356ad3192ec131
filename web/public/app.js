// Onionbox page script (optional: every page works without it). Live status over Server-Sent Events,
// the clock form's browser time, and a fresh simulator screen. No inline script anywhere (strict CSP).

function setText(name, value) {
  for (const el of document.querySelectorAll(`[data-live="${name}"]`)) el.textContent = value;
}

function liveStatus(section) {
  if (typeof EventSource === 'undefined') return;
  const source = new EventSource('/events');
  // Live updates replace the reload hint shown to pages without script.
  for (const hint of document.querySelectorAll('[data-reload]')) hint.hidden = true;
  // A form being sent navigates away by itself: stop listening so a status change it causes cannot
  // trigger a reload that would race the form's own answer.
  document.addEventListener('submit', () => source.close());
  let wasTransient = section.dataset.state === 'connecting' || section.dataset.state === 'booting';
  source.addEventListener('status', (event) => {
    const view = JSON.parse(event.data);
    section.dataset.tone = view.tone;
    section.dataset.state = view.state;
    for (const name of [
      'headline',
      'explanation',
      'torSummary',
      'hardwareSwitch',
      'softwareSwitch',
      'uptime',
      'assist',
    ]) {
      setText(name, view[name]);
    }
    for (const el of document.querySelectorAll('[data-live="assist"]')) el.hidden = view.assist === '';
    const bar = section.querySelector('progress');
    if (bar) {
      bar.hidden = view.progress === null;
      bar.value = view.progress ?? 0;
      bar.textContent = `${view.progress ?? 0} %`;
    }
    // Kill switch buttons, circuits and counters change meaning with the state: reload once it settles.
    const softChanged =
      String(view.softKill) !== section.dataset.softKill && section.dataset.softKill !== undefined;
    // the assist's question (a form) comes and goes with its state: reload to show or drop it
    const askChanged = view.askOwner !== (document.getElementById('assist-consent') !== null);
    if ((wasTransient && !view.transient) || softChanged || askChanged) {
      source.close();
      window.location.reload();
    }
    wasTransient = view.transient;
    section.dataset.softKill = String(view.softKill);
  });
}

function clockForm(form) {
  const hint = form.querySelector('[data-clock-hint]');
  if (hint) hint.hidden = false;
  form.addEventListener('submit', () => {
    form.elements.epochMs.value = String(Date.now());
  });
}

function simScreen(img) {
  setInterval(() => {
    img.src = `/sim/oled.png?t=${Date.now()}`;
  }, 1000);
}

document.addEventListener('DOMContentLoaded', () => {
  const section = document.querySelector('section[data-state]');
  if (section) liveStatus(section);
  for (const form of document.querySelectorAll('form[data-clock]')) clockForm(form);
  const oled = document.querySelector('img[data-oled]');
  if (oled) simScreen(oled);
});
