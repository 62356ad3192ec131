/** A CLI subcommand. Each subsystem adds its commands in its own file, listed in firmware/cli/index.ts. */
export interface CliContext {
  /** onionboxd's state directory (for its control socket). */
  stateDir: string;
  out: (text: string) => void;
  err: (text: string) => void;
}

export interface CliCommand {
  /** e.g. "status", "firewall render", "tor newnym" */
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  run(argv: string[], ctx: CliContext): Promise<number>;
}
