// Every browser run happens inside a private network namespace made here (`unshare -n`), so nothing — mDNS,
// STUN, a stray request — can leave the machine.
//
//   enterNetns()              loopback only (Chromium and chordial-server connect over 127.0.0.1)
//   enterNetns({veth: true})  loopback plus one veth pair of the test's own, v0 10.99.0.1/24 ⇄ v1 10.99.0.2/24,
//                             with a default route via v1 that exists only in this namespace: Firefox gathers
//                             no ICE candidates on loopback alone (shared/browser-testing.md). Both ends are
//                             in the namespace and it does not forward, so nothing can reach anything else.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** The test's own hosts on the veth pair (only with {veth: true}). */
export const VETH_A = '10.99.0.1';
export const VETH_B = '10.99.0.2';

const VETH_SETUP = [
  'ip link add v0 type veth peer name v1',
  `ip addr add ${VETH_A}/24 dev v0`,
  `ip addr add ${VETH_B}/24 dev v1`,
  'ip link set v0 up',
  'ip link set v1 up',
  `ip route add default via ${VETH_B} dev v0`,
].join(' && ');

/** The interfaces of the caller's own namespace (/proc/net/dev follows it; /sys/class/net does not). */
export function interfaces() {
  return readFileSync('/proc/net/dev', 'utf8')
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0].trim())
    .filter(Boolean)
    .sort();
}

/** Re-runs this script inside a fresh network namespace unless it already runs in one; returns only inside. */
export function enterNetns({ veth = false } = {}) {
  const want = veth ? ['lo', 'v0', 'v1'] : ['lo'];
  if (process.env.CHORDIAL_NETNS === '1') {
    const have = interfaces();
    if (have.join(',') !== want.join(',')) {
      throw new Error(`CHORDIAL_NETNS=1 but this namespace has interfaces ${have.join(', ')}, not ${want.join(', ')}`);
    }
    return;
  }
  const setup = veth ? `ip link set lo up && ${VETH_SETUP}` : 'ip link set lo up';
  const r = spawnSync(
    'unshare',
    ['-n', 'sh', '-c', `${setup} && exec "$0" "$@"`, process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    { stdio: 'inherit', env: { ...process.env, CHORDIAL_NETNS: '1' } },
  );
  if (r.error) throw r.error;
  process.exit(r.status ?? 1);
}
