// The typed wrapper against a fake binding: what it passes to the native side, and how it reports
// native failures.
import { describe, expect, it } from 'vitest';
import { classifyBatch, NativeCallError, WorkUnitFilter, type FilterBinding, type NativeFilter } from '../../src/index.js';

function fakeBinding(overrides: Partial<NativeFilter> = {}): { binding: FilterBinding; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const filter = {
    setClusterIps: (...a: unknown[]) => void calls.push(['setClusterIps', ...a]),
    setRole: (...a: unknown[]) => void calls.push(['setRole', ...a]),
    setOwner: (...a: unknown[]) => void calls.push(['setOwner', ...a]),
    classifyBatch: () => new Uint16Array(0),
    ...overrides,
  } as unknown as NativeFilter;
  const binding: FilterBinding = {
    workUnitOfKey: () => 0,
    classifyBatch: (...a: unknown[]) => {
      calls.push(['classifyBatch', ...a]);
      return Uint16Array.of(7);
    },
    classifyBatchDetailed: () => {
      throw new Error('not used');
    },
    Filter: class {
      constructor(...a: unknown[]) {
        calls.push(['new Filter', ...a]);
        return filter;
      }
    } as unknown as FilterBinding['Filter'],
    hasPcap: false,
    hasEngine: false,
  };
  return { binding, calls };
}

describe('wrapper', () => {
  it('parses cluster IPs once and passes the compact form', () => {
    const { binding, calls } = fakeBinding();
    const units = classifyBatch(new Uint8Array(20), Uint32Array.of(0, 20), ['192.0.2.1', '2001:db8::1'], { binding });
    expect(units).toEqual(Uint16Array.of(7));
    const [, , , v4, v6, frames] = calls[0]!;
    expect(v4).toEqual(Uint32Array.of(0xc0000201));
    expect((v6 as Uint8Array).length).toBe(16);
    expect(frames).toBe(false);
  });

  it('constructs the native filter with the hold limits and role', () => {
    const { binding, calls } = fakeBinding();
    new WorkUnitFilter({ clusterIps: ['192.0.2.1'], localSlot: 3, master: true, method: 2, hold: { perUnitPackets: 8 }, binding });
    expect(calls[0]).toEqual(['new Filter', 8, 4096, 4 << 20]);
    expect(calls[2]).toEqual(['setRole', 3, true, 2]);
  });

  it('turns a native failure into a NativeCallError naming the call, with errno and syscall', () => {
    const osError = Object.assign(new Error('socket: Operation not permitted'), { errno: 1, syscall: 'pcap_activate', code: 'EPERM' });
    const { binding } = fakeBinding({
      classifyBatch: () => {
        throw osError;
      },
      setOwner: () => {
        throw new TypeError('unit must be a number');
      },
    });
    const f = new WorkUnitFilter({ clusterIps: ['192.0.2.1'], binding });
    let caught: unknown;
    try {
      f.classifyBatch(new Uint8Array(1), Uint32Array.of(0, 1));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(NativeCallError);
    expect(caught).toMatchObject({ call: 'WorkUnitFilter.classifyBatch', errno: 1, syscall: 'pcap_activate', code: 'EPERM' });
    expect((caught as Error).message).toBe('WorkUnitFilter.classifyBatch: socket: Operation not permitted');
    expect(() => f.setOwner(1, 1)).toThrow(new TypeError('WorkUnitFilter.setOwner: unit must be a number'));
  });

  it('checks arguments before reaching the binding', () => {
    const { binding, calls } = fakeBinding();
    expect(() => classifyBatch(new Uint8Array(4), Uint32Array.of(0, 8), ['192.0.2.1'], { binding })).toThrow(RangeError);
    expect(() => classifyBatch(new Uint8Array(4), Uint32Array.of(0, 4), ['192.0.2.1'], { frames: 1 as unknown as boolean, binding })).toThrow(/opts\.frames must be true or false/);
    expect(calls).toEqual([]);
  });
});
