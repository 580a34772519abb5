/**
 * The one place that loads @peculiar/x509 (used only to CREATE certificates and CRLs; verification uses
 * node:crypto). Loaded lazily so that a member that only verifies never pays for it.
 *
 * @peculiar/x509 2.x depends on tsyringe, which refuses to load unless a Reflect metadata polyfill is
 * installed ("tsyringe requires a reflect polyfill"). The library never reads design-time metadata, so
 * the polyfill below (Reflect.defineMetadata / getOwnMetadata / getMetadata over a WeakMap) is enough.
 * It is installed only when no polyfill (reflect-metadata, @abraham/reflection) is present, and it is
 * the only global this package changes. Replace it with a dependency on reflect-metadata if the project
 * adds one.
 */
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

type MetadataReflect = typeof Reflect & {
  defineMetadata?: (key: unknown, value: unknown, target: object) => void;
  getOwnMetadata?: (key: unknown, target: object) => unknown;
  getMetadata?: (key: unknown, target: object) => unknown;
};

function installReflectMetadataShim(): void {
  const r = Reflect as MetadataReflect;
  if (typeof r.getMetadata === 'function') return;
  const store = new WeakMap<object, Map<unknown, unknown>>();
  const own = (key: unknown, target: object): unknown => store.get(target)?.get(key);
  r.defineMetadata = (key, value, target) => {
    let m = store.get(target);
    if (!m) store.set(target, (m = new Map()));
    m.set(key, value);
  };
  r.getOwnMetadata = own;
  r.getMetadata = (key, target) => {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
      const v = own(key, o);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}

let loading: Promise<typeof X509> | undefined;

/** @peculiar/x509 with Node's WebCrypto as its provider. Safe to call concurrently. */
export function loadX509(): Promise<typeof X509> {
  loading ??= (async () => {
    installReflectMetadataShim();
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return loading;
}
