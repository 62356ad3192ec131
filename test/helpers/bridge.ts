/** A bridge line that tor's grammar (firmware/tor/grammar.ts) accepts, carrying `tag` in its cert. */
export function bridgeLine(n: number, tag = 'AAAA'): string {
  return `obfs4 192.0.2.${n % 256}:443 ${'0123456789ABCDEF0123456789ABCDEF01234567'} cert=${tag} iat-mode=0`;
}

const TEST_FP = '0123456789ABCDEF0123456789ABCDEF01234567';

/** Real-shaped lines of every transport lyrebird runs (addresses from the documentation ranges). */
export const TRANSPORT_LINES = {
  obfs4: `obfs4 203.0.113.10:443 ${TEST_FP} cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0`,
  webtunnel: `webtunnel [2001:db8:49a0:fcc3:d8c5:b51e:76c7:9a2f]:443 ${TEST_FP} url=https://wt.example.net/Xk3zpKQ9a ver=0.0.1`,
  webtunnel4: `webtunnel 192.0.2.44:443 ${TEST_FP} url=https://wt.example.net:8443/path ver=0.0.2`,
  meek: `meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625 url=https://meek.example.net/ front=cdn.example.com utls=hellorandomizedalpn`,
  meekFronts: `meek_lite 192.0.2.20:80 ${TEST_FP} url=https://1314488750.rsc.cdn77.org fronts=www.phpmyadmin.net,cdn.zk.mk`,
  snowflake: `snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 url=https://1098762253.rsc.cdn77.org/ fronts=app.datapacket.com,www.datapacket.com ice=stun:stun.l.google.com:19302,stun:stun.antisip.com:3478,stun:stun.epygi.com:3478 utls-imitate=hellorandomizedalpn`,
  snowflakeSqs: `snowflake 192.0.2.4:80 8838024498816A039FCBBAB14E6F40A0843051FA fingerprint=8838024498816A039FCBBAB14E6F40A0843051FA sqsqueue=https://sqs.example.net/000000000000/snowflake-broker sqscreds=eyJhd3MtYWNjZXNzLWtleS1pZCI6IkVYQU1QTEVLRVlJRCJ9 ice=stun:stun.nextcloud.com:3478`,
  snowflakeAmp: `snowflake 192.0.2.5:80 ${TEST_FP} url=https://snowflake-broker.example.net/ ampcache=https://cdn.ampproject.org/ front=www.google.com`,
} as const;
