/**
 * Readiness, one definition for /readyz and the service manager's READY=1 (service-notify.ts): in a
 * cluster (member or master), holding every other member's session state, and the data plane running.
 */
export interface ReadinessChecks {
  /** a member or the master of a cluster */
  readonly cluster: boolean;
  /** holds every other member's session state (true without state sync) */
  readonly state: boolean;
  /** the data plane is running (true without a data plane) */
  readonly dataplane: boolean;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: ReadinessChecks;
  readonly role: string;
}

export interface ReadinessSource {
  readonly core: { readonly role: string; readonly syncReady: boolean };
}

export function readiness(node: ReadinessSource, dataPlane?: { readonly running: boolean }): Readiness {
  const role = node.core.role;
  const checks = { cluster: role === 'member' || role === 'master', state: node.core.syncReady, dataplane: dataPlane ? dataPlane.running : true };
  return { ready: checks.cluster && checks.state && checks.dataplane, checks, role };
}
