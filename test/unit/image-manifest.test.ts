/**
 * The Raspberry Pi Imager manifest (onionbox.json) generated from a small fake image: sizes and sha256
 * of the compressed download and the extracted image, the device tags, init_format none.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { type ImagerInput, imagerManifest, releaseDateOf, sha256File } from '../../images/manifest.js';
import { ImageRecipeError } from '../../images/render.js';
import { tmpDir } from '../helpers/tmp.js';

const base: ImagerInput = {
  version: '0.1.0',
  url: 'https://example.org/onionbox/onionbox-0.1.0-arm64.img.xz',
  icon: 'https://example.org/onionbox/onionbox.png',
  releaseDate: '2026-12-02',
  extractSize: 1000,
  extractSha256: 'a'.repeat(64),
  downloadSize: 100,
  downloadSha256: 'b'.repeat(64),
};

t.test('generated from a fake image: sizes and checksums are those of the files', async (t) => {
  const dir = tmpDir(t);
  const img = join(dir, 'onionbox-0.1.0-arm64.img');
  // 3 MiB with a recognisable pattern: an MBR signature and some noise, compressible like a real image
  const bytes = Buffer.alloc(3 * 1024 * 1024);
  bytes[510] = 0x55;
  bytes[511] = 0xaa;
  for (let i = 4096; i < 8192; i++) bytes[i] = (i * 7919) & 0xff;
  writeFileSync(img, bytes);
  execFileSync('xz', ['-k', '-T1', '-6', img]);
  const extracted = await sha256File(img);
  const download = await sha256File(`${img}.xz`);
  t.equal(extracted.size, bytes.length);
  t.equal(extracted.sha256, createHash('sha256').update(bytes).digest('hex'));
  t.equal(
    download.sha256,
    createHash('sha256')
      .update(readFileSync(`${img}.xz`))
      .digest('hex'),
  );
  t.ok(download.size < extracted.size);

  const json = imagerManifest({
    ...base,
    extractSize: extracted.size,
    extractSha256: extracted.sha256,
    downloadSize: download.size,
    downloadSha256: download.sha256,
  });
  t.equal(json.os_list.length, 1);
  const os = json.os_list[0]!;
  t.same(Object.keys(os).sort(), [
    'description',
    'devices',
    'extract_sha256',
    'extract_size',
    'icon',
    'image_download_sha256',
    'image_download_size',
    'init_format',
    'name',
    'release_date',
    'url',
  ]);
  t.equal(os.name, 'Onionbox 0.1.0');
  t.equal(os.extract_size, 3 * 1024 * 1024);
  t.equal(os.extract_sha256, extracted.sha256);
  t.equal(os.image_download_size, download.size);
  t.equal(os.image_download_sha256, download.sha256);
  t.same(os.devices, ['pi3-64bit', 'pi4-64bit']);
  t.equal(os.init_format, 'none');
  t.equal(os.release_date, '2026-12-02');
  t.match(os.description, /Zero 2 W/);
  // what Imager reads: plain JSON with the os_list key
  t.same(JSON.parse(JSON.stringify(json)), json);
});

t.test('bad values are refused, nothing is generated', async (t) => {
  const bad: Partial<ImagerInput>[] = [
    { version: 'v1' },
    { version: '0.1.0\n' },
    { url: 'file:///etc/passwd' },
    { url: 'https://example.org/a b.img.xz' },
    { icon: 'javascript:alert(1)' },
    { releaseDate: '2026-13-01' },
    { releaseDate: '02/12/2026' },
    { extractSha256: 'A'.repeat(64) },
    { downloadSha256: 'b'.repeat(63) },
    { extractSize: 0 },
    { downloadSize: -1 },
    { extractSize: 1.5 },
    { downloadSize: 2000 }, // larger than the extracted image: not compressed
  ];
  for (const b of bad) t.throws(() => imagerManifest({ ...base, ...b }), ImageRecipeError, JSON.stringify(b));
});

t.test('release date from SOURCE_DATE_EPOCH, in UTC', async (t) => {
  t.equal(releaseDateOf(0), '1970-01-01');
  t.equal(releaseDateOf(1796169599), '2026-12-01');
  t.equal(releaseDateOf(1796169600), '2026-12-02');
  t.throws(() => releaseDateOf(-1), ImageRecipeError);
  t.throws(() => releaseDateOf(Number.NaN), ImageRecipeError);
});

t.test('sha256File fails on a missing file', async (t) => {
  await t.rejects(sha256File('/nonexistent/onionbox.img'), { code: 'ENOENT' });
});
