/**
 * The relay set's seed: directory authorities and fallbacks from torrc lines and from the tor binary the
 * box runs (a fresh box bootstraps only if these are in the firewall's set before tor starts).
 */
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import {
  builtinDirsFromBinary,
  dirsFromTorrcLines,
  parseDirLine,
  torrcNamesDirs,
} from '../../firmware/tor/dirs.js';

t.test('torrc DirAuthority and FallbackDir lines give their ORPort endpoints', async (t) => {
  const lines = [
    'TestingTorNetwork 1',
    'DirAuthority auth0 orport=5000 v3ident=0123456789ABCDEF0123456789ABCDEF01234567 198.18.0.10:7000 0123456789ABCDEF0123456789ABCDEF01234567',
    'DirAuthority auth1 orport=5001 no-v2 v3ident=0123456789ABCDEF0123456789ABCDEF01234567 198.18.0.11:7001 0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567',
    'FallbackDir 198.18.0.13:7003 orport=5003 id=0123456789ABCDEF0123456789ABCDEF01234567',
    'FallbackDir 198.18.0.14 orport=5004 id=0123456789ABCDEF0123456789ABCDEF01234567 ipv6=[2001:db8::1]:5004',
    'DirAuthority broken orport=x 198.18.0.12:7002 ABC',
  ];
  t.same(dirsFromTorrcLines(lines), [
    { address: '198.18.0.10', port: 5000 },
    { address: '198.18.0.11', port: 5001 },
    { address: '198.18.0.13', port: 5003 },
    { address: '198.18.0.14', port: 5004 },
  ]);
  t.ok(torrcNamesDirs(lines));
  t.notOk(
    torrcNamesDirs(['FallbackDir 198.18.0.13:7003 orport=5003 id=0123456789ABCDEF0123456789ABCDEF01234567']),
  );
});

t.test('lines that are not authorities or fallbacks, or name unroutable hosts, give nothing', async (t) => {
  for (const l of [
    '',
    'moria1 orport=9201',
    'DirAuthority x orport=1 127.0.0.1:2 0123456789ABCDEF0123456789ABCDEF01234567',
    'FallbackDir 0.0.0.0:80 orport=443 id=0123456789ABCDEF0123456789ABCDEF01234567',
    'FallbackDir 1.2.3.4:80 orport=70000 id=0123456789ABCDEF0123456789ABCDEF01234567',
    'FallbackDir 1.2.3.4:80 orport=443 id=XYZ',
    'Bridge 1.2.3.4:443 0123456789ABCDEF0123456789ABCDEF01234567',
  ]) {
    t.equal(parseDirLine(l), null, JSON.stringify(l));
  }
});

t.test('built-in lists are read from a binary: literals between NULs, neighbours not merged', async (t) => {
  const fake = Buffer.concat([
    Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2]),
    Buffer.from(
      'moria1 orport=9201 v3ident=F533C81CEF0BC0267857C99B2F471ADF249FA232 128.31.0.39:9231 1A25C6358DB91342AA51720A5038B72742732498\0',
    ),
    Buffer.from('64.65.62.122 orport=443 id=4F067C5C488173987B568CD7245F1CA71DEE996B\0'),
    Buffer.from(
      '162.19.252.137 orport=9200 id=E0608745ED237A918A73A370538023330F1BF45D ipv6=[2001:db8::1]:9200\0',
    ),
    Buffer.from('ExitPolicy accept *:80 orport=1\0\x01\x02'),
  ]);
  t.same(builtinDirsFromBinary(fake), [
    { address: '64.65.62.122', port: 443 },
    { address: '128.31.0.39', port: 9201 },
    { address: '162.19.252.137', port: 9200 },
  ]);
  t.same(builtinDirsFromBinary(Buffer.from('no lists here')), []);
});

const TOR = '/usr/bin/tor';
t.test(
  "the installed tor's own lists: its authorities and about 200 fallbacks",
  { skip: !existsSync(TOR) && process.env.CI !== 'true' ? 'tor not installed' : false },
  async (t) => {
    const dirs = builtinDirsFromBinary(readFileSync(TOR));
    // moria1 and gabelmoo have been authorities for over a decade
    t.ok(
      dirs.some((d) => d.address === '128.31.0.39' && d.port === 9201),
      'moria1',
    );
    t.ok(
      dirs.some((d) => d.address === '131.188.40.189' && d.port === 443),
      'gabelmoo',
    );
    t.ok(dirs.length > 100 && dirs.length < 1000, `${dirs.length} endpoints`);
  },
);
