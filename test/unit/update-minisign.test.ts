import { execFileSync } from 'node:child_process';
import { getHashes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  parsePublicKey,
  parseSignature,
  type TrustedKeys,
  verifyMinisign,
} from '../../firmware/update/minisign.js';
import { parseSecretKey, publicKeyText, signMinisign } from '../../scripts/release/minisign-sign.js';
import { minisignSkipReason } from '../helpers/minisign.js';

const dir = new URL('../fixtures/update/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, dir), 'utf8');
const manifest = readFileSync(new URL('manifest.json', dir));
const current = parsePublicKey(read('test-current.pub'));
const next = parsePublicKey(read('test-next.pub'));
const foreign = parsePublicKey(read('test-foreign.pub'));
const trust: TrustedKeys = { keys: [current, next] };

t.test("this Node's OpenSSL has BLAKE2b-512", async (t) => {
  t.ok(getHashes().includes('blake2b512'));
});

t.test('public keys: minisign files, bare base64 lines, key ids as minisign prints them', async (t) => {
  const text = read('test-current.pub');
  const shown = /minisign public key ([0-9A-F]{16})/.exec(text)?.[1];
  t.equal(current.keyId, shown);
  t.equal(parsePublicKey(text.split('\n')[1]!).keyId, shown, 'the bare base64 line (minisign -P)');
  t.not(current.keyId, next.keyId);
  for (const bad of [
    '',
    'untrusted comment: x\n',
    'untrusted comment: x\nnot base64!\n',
    'QUJD\n',
    `${text}${text}`,
  ]) {
    t.throws(() => parsePublicKey(bad), { code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID' }, JSON.stringify(bad));
  }
});

t.test(
  "minisign's own signatures verify: prehashed (ED) and legacy (Ed), current and next key",
  async (t) => {
    const ed = verifyMinisign(manifest, read('manifest.json.prehashed.minisig'), trust);
    t.same(ed, { keyId: current.keyId, algorithm: 'ED', trustedComment: 'onionbox 1.2.0 test vector' });
    const legacy = verifyMinisign(manifest, read('manifest.json.legacy.minisig'), trust);
    t.same(legacy, { keyId: current.keyId, algorithm: 'Ed', trustedComment: 'onionbox 1.2.0 legacy' });
    const byNext = verifyMinisign(manifest, read('manifest.json.next.minisig'), trust);
    t.equal(byNext.keyId, next.keyId, 'the next key (rotation) is accepted');
    t.equal(
      parseSignature(read('manifest.json.prehashed.minisig')).untrustedComment,
      'signature from minisign secret key',
    );
    const crlf = read('manifest.json.prehashed.minisig').replace(/\n/g, '\r\n');
    t.equal(verifyMinisign(manifest, crlf, trust).keyId, current.keyId, 'CRLF line ends');
  },
);

t.test(
  'refusals: foreign key, revoked key, tampered file, tampered trusted comment, wrong key',
  async (t) => {
    const sig = read('manifest.json.prehashed.minisig');
    t.throws(() => verifyMinisign(manifest, read('manifest.json.foreign.minisig'), trust), {
      code: 'OBX_ERR_UPDATE_KEY_UNKNOWN',
    });
    t.equal(
      verifyMinisign(manifest, read('manifest.json.foreign.minisig'), { keys: [foreign] }).keyId,
      foreign.keyId,
      'the foreign signature is a good one, just not by a key this box trusts',
    );
    t.throws(
      () => verifyMinisign(manifest, sig, { keys: [current, next], revoked: [current.keyId.toLowerCase()] }),
      {
        code: 'OBX_ERR_UPDATE_KEY_REVOKED',
      },
    );
    t.throws(() => verifyMinisign(manifest, sig, { keys: [] }), { code: 'OBX_ERR_UPDATE_KEY_UNKNOWN' });
    const tampered = Buffer.from(manifest.toString('utf8').replace('1.2.0', '9.2.0'));
    for (const name of ['prehashed', 'legacy']) {
      t.throws(() => verifyMinisign(tampered, read(`manifest.json.${name}.minisig`), trust), {
        code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID',
        message: /file does not match/,
      });
    }
    t.throws(() => verifyMinisign(Buffer.concat([manifest, Buffer.from(' ')]), sig, trust), {
      code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID',
    });
    const comment = sig.replace(
      'trusted comment: onionbox 1.2.0 test vector',
      'trusted comment: onionbox 9.9.9',
    );
    t.throws(() => verifyMinisign(manifest, comment, trust), {
      code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID',
      message: /trusted comment/,
    });
    // The foreign key's signature relabelled with the current key's id: the key id matches, the signature not.
    const foreignSig = read('manifest.json.foreign.minisig').split('\n');
    const raw = Buffer.from(foreignSig[1]!, 'base64');
    Buffer.from(read('test-current.pub').split('\n')[1]!, 'base64').copy(raw, 2, 2, 10);
    foreignSig[1] = raw.toString('base64');
    t.throws(() => verifyMinisign(manifest, foreignSig.join('\n'), trust), {
      code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID',
    });
    // A signature over the file with the global signature of another one.
    const lines = sig.split('\n');
    lines[3] = read('manifest.json.legacy.minisig').split('\n')[3]!;
    t.throws(() => verifyMinisign(manifest, lines.join('\n'), trust), {
      code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID',
    });
  },
);

t.test('malformed signature files are refused', async (t) => {
  const sig = read('manifest.json.prehashed.minisig');
  const lines = sig.split('\n');
  const unknownAlg = Buffer.from(lines[1]!, 'base64');
  unknownAlg.write('Xx', 0, 'latin1');
  const bad = [
    '',
    lines.slice(0, 3).join('\n'),
    [lines[0], lines[1], 'comment: x', lines[3]].join('\n'),
    ['comment', lines[1], lines[2], lines[3]].join('\n'),
    [lines[0], 'AAAA', lines[2], lines[3]].join('\n'),
    [lines[0], lines[1], lines[2], 'AAAA'].join('\n'),
    [lines[0], unknownAlg.toString('base64'), lines[2], lines[3]].join('\n'),
    `${sig}extra line\n`,
    `untrusted comment: ${'x'.repeat(9000)}\n${lines.slice(1).join('\n')}`,
  ];
  for (const text of bad) {
    t.throws(() => verifyMinisign(manifest, text, trust), { code: 'OBX_ERR_UPDATE_SIGNATURE_INVALID' });
  }
});

t.test('our signer reads minisign secret keys and writes what we and minisign verify', async (t) => {
  const key = parseSecretKey(read('test-current.key'));
  t.equal(key.keyId, current.keyId);
  t.equal(publicKeyText(key), read('test-current.pub'), 'the public key file minisign wrote');
  for (const prehash of [true, false]) {
    const text = signMinisign(manifest, key, { trustedComment: 'ours', prehash });
    const v = verifyMinisign(manifest, text, trust);
    t.same(v, { keyId: current.keyId, algorithm: prehash ? 'ED' : 'Ed', trustedComment: 'ours' });
  }
  t.throws(() => signMinisign(manifest, key, { trustedComment: 'a\nb' }), /one line/);
  t.throws(() => parseSecretKey(read('test-current.pub')), /secret key/);
  t.throws(() => parseSecretKey('junk'), /secret key/);
  const raw = Buffer.from(read('test-current.key').split('\n')[1]!, 'base64');
  const encrypted = Buffer.from(raw);
  encrypted.write('Sc', 2, 'latin1');
  t.throws(() => parseSecretKey(encrypted.toString('base64')), /password-protected/);
  const corrupt = Buffer.from(raw);
  corrupt[100] = (corrupt[100] ?? 0) ^ 1;
  t.throws(() => parseSecretKey(corrupt.toString('base64')), /corrupt/);
});

t.test('minisign -V accepts our signatures', { skip: minisignSkipReason() }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'obx-minisign-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const key = parseSecretKey(read('test-next.key'));
  const file = join(tmp, 'm.json');
  writeFileSync(file, manifest);
  writeFileSync(join(tmp, 'k.pub'), publicKeyText(key));
  for (const prehash of [true, false]) {
    writeFileSync(
      `${file}.minisig`,
      signMinisign(manifest, key, { trustedComment: `prehash ${prehash}`, prehash }),
    );
    const out = execFileSync('minisign', ['-V', '-p', join(tmp, 'k.pub'), '-m', file], {
      encoding: 'utf8',
    });
    t.match(out, /Signature and comment signature verified/);
    t.match(out, new RegExp(`Trusted comment: prehash ${prehash}`));
  }
  // minisign -H requires the prehashed algorithm: ours is.
  writeFileSync(`${file}.minisig`, signMinisign(manifest, key, { trustedComment: 'x' }));
  execFileSync('minisign', ['-V', '-H', '-p', join(tmp, 'k.pub'), '-m', file], { stdio: 'ignore' });
  // And it refuses a file we did not sign.
  writeFileSync(file, 'changed');
  t.throws(() => execFileSync('minisign', ['-V', '-p', join(tmp, 'k.pub'), '-m', file], { stdio: 'ignore' }));
});

t.test('keys made now with minisign -G -W verify too', { skip: minisignSkipReason() }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'obx-minisign-'));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const run = (args: string[]) => execFileSync('minisign', args, { cwd: tmp, stdio: 'ignore' });
  run(['-G', '-W', '-p', 'k.pub', '-s', 'k.key']);
  writeFileSync(join(tmp, 'f'), 'x'.repeat(100_000));
  run(['-S', '-s', 'k.key', '-m', 'f', '-t', 'fresh']);
  const key = parsePublicKey(readFileSync(join(tmp, 'k.pub'), 'utf8'));
  const v = verifyMinisign(readFileSync(join(tmp, 'f')), readFileSync(join(tmp, 'f.minisig'), 'utf8'), {
    keys: [key],
  });
  t.equal(v.trustedComment, 'fresh');
  t.equal(parseSecretKey(readFileSync(join(tmp, 'k.key'), 'utf8')).keyId, key.keyId);
});
