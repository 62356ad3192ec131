/** A bridge line that tor's grammar (firmware/tor/grammar.ts) accepts, carrying `tag` in its cert. */
export function bridgeLine(n: number, tag = 'AAAA'): string {
  return `obfs4 192.0.2.${n % 256}:443 ${'0123456789ABCDEF0123456789ABCDEF01234567'} cert=${tag} iat-mode=0`;
}
