import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * CPUs this process may keep busy: the cores it may run on, or fewer when its cgroup has a CPU
 * quota (a pod's CPU limit: `cpu: "2"` is 200000 µs per 100000). A fractional limit counts up:
 * at 1.5, two encodes together still get 1.5 CPUs to one's 1.
 */
export function cpuLimit(read: (path: string) => string = (path) => readFileSync(path, 'utf8')): number {
  const cores = availableParallelism();
  const quota = cgroupQuota(read);
  return quota === undefined ? cores : Math.max(1, Math.min(cores, Math.ceil(quota)));
}

/** CPUs of quota per period: cgroup v2's cpu.max, else v1's cfs files; undefined when unlimited or unknown. */
function cgroupQuota(read: (path: string) => string): number | undefined {
  const ratio = (quota: string | undefined, period: string | undefined) => {
    const q = Number(quota);
    const p = Number(period);
    return q > 0 && p > 0 ? q / p : undefined;
  };
  try {
    const [quota, period] = read('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    return quota === 'max' ? undefined : ratio(quota, period);
  } catch {
    try {
      return ratio(read('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim(), read('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim());
    } catch {
      return undefined;
    }
  }
}
