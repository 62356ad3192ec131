/**
 * The one way firmware runs a short-lived program: an argument array (never a shell), a timeout, an
 * optional network namespace (`ip netns exec NAME ...`), and the whole outcome (exit code, stdout,
 * stderr). It never rejects: each caller turns a failed run into its own error, so each keeps its own
 * error semantics. Long-running children (tor, hostapd, dnsmasq, `nft -i`) are spawned by their owners.
 */
import { execFile } from 'node:child_process';

export interface ExecOptions {
  /** Kill the program after this long (SIGTERM); default 10 s. */
  timeoutMs?: number | undefined;
  /** Run it inside this network namespace (the name was checked by the caller's allowlist). */
  netns?: string | undefined;
  /** Its environment (default: onionboxd's). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Largest stdout or stderr kept (default 64 MiB: `nft -j list ruleset` can be large). */
  maxBuffer?: number | undefined;
}

export interface ExecResult {
  /** true when it ran and exited 0. */
  ok: boolean;
  /** Its exit code; -1 when it could not be started, was killed (timeout) or its output overflowed. */
  code: number;
  stdout: string;
  stderr: string;
  /** Why it failed, in one line, when ok is false (Node's message: "Command failed: ...", ENOENT, ...). */
  error?: string | undefined;
}

/** `[file, argv]` for cmd args, inside netns when one is given. */
export function nsCommand(
  netns: string | undefined,
  cmd: string,
  args: readonly string[],
): [string, string[]] {
  return netns ? ['ip', ['netns', 'exec', netns, cmd, ...args]] : [cmd, [...args]];
}

export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const [file, argv] = nsCommand(opts.netns, cmd, args);
  return new Promise((resolve) => {
    execFile(
      file,
      argv,
      {
        timeout: opts.timeoutMs ?? 10_000,
        maxBuffer: opts.maxBuffer ?? 64 * 1024 * 1024,
        ...(opts.env ? { env: opts.env } : {}),
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ ok: true, code: 0, stdout: String(stdout), stderr: String(stderr) });
          return;
        }
        resolve({
          ok: false,
          code: typeof err.code === 'number' ? err.code : -1,
          stdout: String(stdout ?? ''),
          stderr: String(stderr ?? ''),
          error: err.message,
        });
      },
    );
  });
}
