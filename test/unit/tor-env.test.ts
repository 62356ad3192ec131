/** tor's environment carries none of systemd's notify or watchdog variables (issue 13). */
import t from 'tap';
import { torEnvironment } from '../../firmware/tor/process.js';

t.test('NOTIFY_SOCKET, WATCHDOG_* and LISTEN_* are left out; the rest is kept', async (t) => {
  const env = torEnvironment({
    PATH: '/usr/bin',
    LANG: 'C.UTF-8',
    NOTIFY_SOCKET: '/run/systemd/notify',
    WATCHDOG_USEC: '30000000',
    WATCHDOG_PID: '42',
    LISTEN_FDS: '1',
    LISTEN_PID: '42',
  });
  t.same(env, { PATH: '/usr/bin', LANG: 'C.UTF-8' });
});
