/**
 * The one way the test servers started as processes of their own (tls-front, http-server, meek-moat,
 * snowflake-broker, the simulator's update-server) read a required `--name value` argument: missing, the
 * program says which and exits with status 2.
 */
export function requiredArg(program: string, name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (v === undefined) {
    process.stderr.write(`${program}: --${name} is required\n`);
    process.exit(2);
  }
  return v;
}
