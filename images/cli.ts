/**
 * The image build's window onto the recipe: images/build (bash) asks this for lists and rendered files,
 * so the data and the renderers exist once, in TypeScript, with unit tests.
 *
 *   tsx images/cli.ts list packages|build-packages|native-addons|masked|enabled|helper-users|remove-paths|remove-modules|data-binds|layout
 *   tsx images/cli.ts render config.txt|cmdline.txt|fstab|raspi-firmware|raspi-firmware-custom|raspi-extra-cmdline [--kernel VERSION]
 *   tsx images/cli.ts image-manifest --name NAME --dpkg DPKG.tsv --debs SHA256SUMS --links LINKS.tsv [--ss SS.txt]
 *   tsx images/cli.ts imager --image FILE.img.xz --extract-size N --extract-sha256 HEX --url URL --version V --date YYYY-MM-DD
 *   tsx images/cli.ts check MANIFEST.json
 *   tsx images/cli.ts install-system ROOT   firmware/system/* and NetworkManager's files into the root
 *   tsx images/cli.ts files-manifest PREFIX=DIR...   sorted path/type/mode/owner/size/sha256 lines
 *   tsx images/cli.ts release-files ROOT --version V --built EPOCH   /etc/onionbox/release.json and the release
 *     public keys from ONIONBOX_RELEASE_PUBKEY_FILE / ONIONBOX_RELEASE_NEXT_PUBKEY_FILE (none: no key)
 */

/** One line per file system entry under dir: PREFIX/path, type, mode, uid:gid, size, sha256 or link target. */
async function filesManifest(prefix: string, dir: string): Promise<string[]> {
  const lines: string[] = [];
  // a walk of our own: readdir's recursive option descends into symlinked directories (the root's
  // /dev/fd -> /proc/self/fd would be the host's), this one never follows a link
  const rels: string[] = [];
  const walk = async (sub: string): Promise<void> => {
    for (const e of await readdir(join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? e.name : `${sub}/${e.name}`;
      rels.push(rel);
      if (e.isDirectory() && !e.isSymbolicLink()) await walk(rel);
    }
  };
  await walk('');
  for (const rel of rels.sort()) {
    const path = join(dir, rel);
    const st = await lstat(path);
    const head = `${prefix}/${rel}\t`;
    const meta = `${(st.mode & 0o7777).toString(8)}\t${st.uid}:${st.gid}`;
    if (st.isSymbolicLink()) lines.push(`${head}l\t${meta}\t-\t${await readlink(path)}`);
    else if (st.isDirectory()) lines.push(`${head}d\t${meta}\t-\t-`);
    else if (st.isFile()) {
      const sha = createHash('sha256')
        .update(await readFile(path))
        .digest('hex');
      lines.push(`${head}f\t${meta}\t${st.size}\t${sha}`);
    } else lines.push(`${head}o\t${meta}\t-\t${st.rdev}`);
  }
  return lines;
}

import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  checkManifest,
  type ImageManifest,
  packagesFrom,
  parseImageManifest,
  parseSs,
  unitsFromLinks,
} from './check.js';
import { imagerManifest, sha256File } from './manifest.js';
import * as recipe from './recipe.js';
import { releaseFiles } from './release-files.js';
import { renderFile } from './render.js';
import { MASKED_UNITS, networkManagerFiles, placeSystemFiles } from './system-files.js';

const lists: Record<string, readonly string[]> = {
  packages: recipe.PACKAGES,
  'build-packages': recipe.BUILD_PACKAGES,
  'forky-packages': recipe.FORKY_PACKAGES,
  'native-addons': recipe.NATIVE_ADDONS,
  masked: MASKED_UNITS,
  disabled: recipe.DISABLED_UNITS,
  enabled: recipe.ENABLED_BY_IMAGE,
  'remove-paths': recipe.REMOVE_PATHS,
  'remove-modules': recipe.REMOVE_MODULE_DIRS,
  'keep-dtb-dirs': recipe.KEEP_DTB_DIRS,
  'gconv-keep': recipe.GCONV_KEEP,
  'node-modules-prune': recipe.NODE_MODULES_PRUNE,
  'helper-users': recipe.HELPER_USERS,
  // "DIR MOUNTPOINT": a directory of the data partition and where it is bound in the root
  'data-binds': recipe.DATA_BINDS.map((b) => `${b.dir} ${b.mountPoint}`),
  // "NAME VALUE": the A/B layout's numbers and labels, as shell assignments take them
  layout: [
    `BOOT_SIZE_MB ${recipe.BOOT_PARTITION_MB}`,
    `SLOT_MB ${recipe.SLOT_MB}`,
    `SLOT_HEADROOM_MB ${recipe.SLOT_HEADROOM_MB}`,
    `SLOT_HEADROOM_PERCENT ${recipe.SLOT_HEADROOM_PERCENT}`,
    `DATA_IMAGE_MB ${recipe.DATA_IMAGE_MB}`,
    `DISK_ID ${recipe.DISK_ID}`,
    `ROOT_LABEL ${recipe.ROOT_LABEL}`,
    `BOOT_LABEL ${recipe.BOOT_LABEL}`,
    `DATA_LABEL ${recipe.DATA_LABEL}`,
  ],
};

function optFlag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function flag(args: string[], name: string): string {
  const v = optFlag(args, name);
  if (v === undefined) throw new Error(`missing ${name}`);
  return v;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, what, ...rest] = argv;
  if (cmd === 'list' && what !== undefined && what in lists) {
    process.stdout.write(`${(lists[what] ?? []).join('\n')}\n`);
    return 0;
  }
  if (cmd === 'render' && what !== undefined) {
    const bootConfigLines = await readFile(new URL('./boot/config.txt', import.meta.url), 'utf8');
    process.stdout.write(renderFile(what, { bootConfigLines, kernelVersion: optFlag(rest, '--kernel') }));
    return 0;
  }
  if (cmd === 'image-manifest') {
    const args = [what ?? '', ...rest];
    const units = unitsFromLinks(await readFile(flag(args, '--links'), 'utf8'));
    const ss = optFlag(args, '--ss');
    const manifest: ImageManifest = {
      name: flag(args, '--name'),
      packages: packagesFrom(
        await readFile(flag(args, '--dpkg'), 'utf8'),
        await readFile(flag(args, '--debs'), 'utf8'),
      ),
      enabledUnits: units.enabled,
      maskedUnits: units.masked,
      listening: ss === undefined ? [] : parseSs(await readFile(ss, 'utf8')),
    };
    process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
    return 0;
  }
  if (cmd === 'imager') {
    const args = [what ?? '', ...rest];
    const image = flag(args, '--image');
    const { size, sha256 } = await sha256File(image);
    const json = imagerManifest({
      version: flag(args, '--version'),
      url: flag(args, '--url'),
      icon: flag(args, '--icon'),
      releaseDate: flag(args, '--date'),
      extractSize: Number(flag(args, '--extract-size')),
      extractSha256: flag(args, '--extract-sha256'),
      downloadSize: size,
      downloadSha256: sha256,
    });
    process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  if (cmd === 'install-system' && what !== undefined) {
    const root = what;
    const src = new URL('../firmware/system/', import.meta.url).pathname;
    const rels = (await readdir(src, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name).slice(src.length));
    const files = [
      ...(await Promise.all(
        placeSystemFiles(rels).map(async (p) => ({ ...p, text: await readFile(join(src, p.src), 'utf8') })),
      )),
      ...networkManagerFiles().map((f) => ({ ...f, src: 'firmware/net renderers' })),
    ];
    for (const f of files) {
      const dest = join(root, f.dest);
      await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
      await writeFile(dest, f.text, { mode: f.mode });
      await chmod(dest, f.mode);
      process.stdout.write(`${f.src} -> /${f.dest} (${f.mode.toString(8)})\n`);
    }
    return 0;
  }
  if (cmd === 'files-manifest' && what !== undefined) {
    const lines: string[] = [];
    for (const arg of [what, ...rest]) {
      const eq = arg.indexOf('=');
      if (eq <= 0) throw new Error(`files-manifest: "${arg}" is not PREFIX=DIR`);
      lines.push(...(await filesManifest(arg.slice(0, eq), arg.slice(eq + 1))));
    }
    process.stdout.write(`${lines.sort().join('\n')}\n`);
    return 0;
  }
  if (cmd === 'release-files' && what !== undefined) {
    const keyFile = process.env.ONIONBOX_RELEASE_PUBKEY_FILE;
    const nextFile = process.env.ONIONBOX_RELEASE_NEXT_PUBKEY_FILE;
    const files = releaseFiles({
      version: flag(rest, '--version'),
      builtEpoch: Number(flag(rest, '--built')),
      currentKey: keyFile ? await readFile(keyFile, 'utf8') : undefined,
      nextKey: nextFile ? await readFile(nextFile, 'utf8') : undefined,
    });
    for (const f of files) {
      const dest = join(what, f.path);
      await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
      await writeFile(dest, f.text, { mode: f.mode });
      await chmod(dest, f.mode);
      process.stdout.write(`/${f.path}\n`);
    }
    if (!keyFile)
      process.stdout.write(
        'no release key (ONIONBOX_RELEASE_PUBKEY_FILE unset): updates are off on this image\n',
      );
    return 0;
  }
  if (cmd === 'check' && what !== undefined) {
    const manifest = parseImageManifest(JSON.parse(await readFile(what, 'utf8')) as unknown);
    const problems = checkManifest(manifest);
    for (const p of problems) process.stderr.write(`not allowed: ${p}\n`);
    if (problems.length === 0) process.stdout.write('manifest matches the allow list\n');
    return problems.length === 0 ? 0 : 1;
  }
  process.stderr.write(
    'usage: cli.ts list LIST | render FILE | imager --image F ... | check MANIFEST.json\n',
  );
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`images/cli.ts: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
