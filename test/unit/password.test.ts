/** scrypt parameters (issue 13): p=5 at today's memory for new hashes; hashes of earlier firmware still verify. */
import t from 'tap';
import { hashPassword, SCRYPT_PARAMS, verifyPassword } from '../../firmware/lib/password.js';

const PASSWORD = 'violet tractor umbrella 42';
/** Written by the firmware before this change (N=2^14, r=8, p=1). */
const OLD_HASH = 'scrypt$16384$8$1$qm7uSXBBf/5+ZD/MSVLypQ==$iUiBy+1Sw5p+y1ptsOUKTW5E5ZIa6ngt0D/djJP9Gqs=';

t.test(
  'new hashes use N=2^14, r=8, p=5 (16 MiB, five times the work of p=1), stored in the hash',
  async (t) => {
    t.same(SCRYPT_PARAMS, { N: 16384, r: 8, p: 5 });
    const hash = await hashPassword(PASSWORD);
    t.match(hash, /^scrypt\$16384\$8\$5\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    t.equal(await verifyPassword(PASSWORD, hash), true);
    t.equal(await verifyPassword(`${PASSWORD}x`, hash), false);
  },
);

t.test('a hash from earlier firmware (p=1) still verifies', async (t) => {
  t.equal(await verifyPassword(PASSWORD, OLD_HASH), true);
  t.equal(await verifyPassword('something else entirely', OLD_HASH), false);
});
