/**
 * The admin API client gwctl waits with: when the member it asks stops answering (it was killed, or its
 * host went away: a master change during a drain), it goes on with another member of the cluster and
 * says so on stderr, instead of failing with "cannot reach". Other members are tried at the same scheme
 * and port as the endpoint, at their member addresses (the ids of the last cluster view seen).
 */
import { call, EXIT, GwctlError, type ClientOptions, type ViewSchema } from './client.js';

export class FollowingClient {
  private members: readonly string[] = [];

  constructor(
    private options: ClientOptions,
    private readonly note: (line: string) => void,
  ) {}

  /** The endpoint now asked. */
  get endpoint(): string {
    return this.options.endpoint;
  }

  /** The members to try when the endpoint stops answering (member ids from a cluster view). */
  knowMembers(ids: readonly string[]): void {
    if (ids.length > 0) this.members = [...ids];
  }

  async call<T>(method: string, path: string, schema: ViewSchema, body?: unknown): Promise<T> {
    try {
      return await call<T>(this.options, method, path, schema, body);
    } catch (e) {
      if (!(e instanceof GwctlError) || e.exitCode !== EXIT.unreachable) throw e;
      const lost = this.options.endpoint;
      const lostHost = new URL(lost).hostname;
      for (const id of this.members) {
        if (id === lostHost) continue;
        const next: ClientOptions = { ...this.options, endpoint: withHost(lost, id) };
        try {
          const answer = await call<T>(next, method, path, schema, body);
          this.note(`${lost} stopped answering (${reason(e)}); continuing with ${next.endpoint}`);
          this.options = next;
          return answer;
        } catch (other) {
          if (other instanceof GwctlError && other.exitCode === EXIT.unreachable) continue;
          throw other;
        }
      }
      const tried = this.members.filter((id) => id !== lostHost);
      throw new GwctlError(EXIT.unreachable, `${e.message}${tried.length > 0 ? `; no other member answers either (tried ${tried.join(', ')} on the same port)` : ''}`);
    }
  }
}

function withHost(endpoint: string, host: string): string {
  const url = new URL(endpoint);
  url.hostname = host;
  return url.toString();
}

function reason(e: GwctlError): string {
  return /\(([^)]*)\)/.exec(e.message)?.[1] ?? e.message;
}
