// Every browser run happens inside a private network namespace made here (`unshare -n`, loopback only), so
// nothing — mDNS, STUN, a stray request — can leave the machine.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Re-runs this script inside a fresh network namespace unless it already runs in one; returns only inside. */
export function enterNetns() {
  if (process.env.CHORDIAL_NETNS === '1') {
    // /proc/net/dev lists the interfaces of the reader's own namespace (/sys/class/net does not follow it).
    const ifaces = readFileSync('/proc/net/dev', 'utf8')
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0].trim())
      .filter(Boolean);
    if (ifaces.some((i) => i !== 'lo')) {
      throw new Error(`CHORDIAL_NETNS=1 but this namespace has interfaces other than lo: ${ifaces.join(', ')}`);
    }
    return;
  }
  const r = spawnSync(
    'unshare',
    [
      '-n',
      'sh',
      '-c',
      'ip link set lo up && exec "$0" "$@"',
      process.execPath,
      ...process.execArgv,
      ...process.argv.slice(1),
    ],
    { stdio: 'inherit', env: { ...process.env, CHORDIAL_NETNS: '1' } },
  );
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}
