/** Set-up shared by the bench suites: ordered cleanups, and a login on the page over HTTP. */

/** Cleanups run newest first; one that fails does not stop the others (a Teardown for test helpers). */
export class Cleanup {
  #fns: (() => unknown)[] = [];
  teardown(fn: () => unknown): void {
    this.#fns.unshift(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.#fns) {
      try {
        await fn();
      } catch {
        // best effort; the next cleanup still runs
      }
    }
    this.#fns = [];
  }
}

function cookiesOf(res: Response): string[] {
  return res.headers.getSetCookie().map((c) => c.split(';')[0] ?? '');
}

/** Logs in on the page at `base` (loopback) the way a browser does; returns the Cookie header. */
export async function login(base: string, password: string): Promise<string> {
  const page = await fetch(`${base}/login`);
  const jar = cookiesOf(page);
  const token = /name="_csrf" value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.join('; ') },
    body: new URLSearchParams({ _csrf: token, password }).toString(),
  });
  if (res.status !== 303) throw new Error(`login failed: ${res.status}`);
  return [...jar, ...cookiesOf(res)].join('; ');
}
