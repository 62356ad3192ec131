/** The rules of one chain in a rendered nft script (firmware/firewall/render.ts), trimmed, in order. */
export function chainBody(script: string, name: string): string[] {
  const m = new RegExp(`\\n  chain ${name} \\{\\n((?: {4}.*\\n)*) {2}\\}`).exec(script);
  if (!m) throw new Error(`no chain ${name}`);
  return (m[1] ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.trim());
}
