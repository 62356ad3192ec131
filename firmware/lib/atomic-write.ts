/**
 * SD-card-safe file replacement: write a temp file in the same directory, fsync it, rename it over the
 * target, fsync the directory. A power cut at any moment leaves either the old or the new file.
 * Every file the box owns is written through here.
 */
import { constants } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function atomicWriteFile(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(16).slice(2)}`);
  const handle = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    try {
      await handle.writeFile(data);
      await handle.chmod(mode); // umask must not widen or narrow what we asked for
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDirectory(dir);
}

/**
 * Rewrites a small file in place, keeping its inode: for a file another unit sees through a bind mount
 * of that one file (systemd's BindReadOnlyPaths=), where a rename would leave the mount on the old
 * inode for good. `data` is padded to `size` bytes (a comment line of spaces; it must fit) and written
 * with one pwrite at offset 0 over a file that is always exactly `size` bytes long, so a reader sees the
 * old or the new text, never a short file; then fsync. The file is created if missing; a symlink is
 * refused (O_NOFOLLOW). Used for tor's resolv.conf in onionboxd's runtime directory (tmpfs: a power cut
 * loses it, and onionboxd writes it again at every start).
 */
export async function rewriteInPlace(path: string, data: string, size: number, mode = 0o644): Promise<void> {
  const body = Buffer.from(data, 'utf8');
  // the padding: "#" + spaces + "\n", a comment every resolv.conf reader skips
  if (body.length + 2 > size) throw new Error(`rewriteInPlace: ${body.length} bytes do not fit in ${size}`);
  const buf = Buffer.alloc(size, 0x20);
  body.copy(buf, 0);
  buf[body.length] = 0x23; // '#'
  buf[size - 1] = 0x0a; // '\n'
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW, mode);
  try {
    const { bytesWritten } = await handle.write(buf, 0, size, 0);
    if (bytesWritten !== size) throw new Error(`rewriteInPlace: short write to ${path}`);
    await handle.truncate(size);
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
