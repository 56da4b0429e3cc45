import { describe, expect, it } from 'vitest';
import { createRefresher, type ChannelLike, type Grant, type LockManagerLike } from './refresh';

/** Locks and a broadcast channel shared by several simulated tabs of one browser. */
function browser() {
	let tail: Promise<unknown> = Promise.resolve();
	const locks: LockManagerLike = {
		request<T>(_name: string, callback: () => Promise<T>): Promise<T> {
			const result = tail.then(callback);
			tail = result.catch(() => undefined);
			return result;
		}
	};
	const tabs: ((event: { data: unknown }) => void)[][] = [];
	const channel = (): ChannelLike => {
		const mine: ((event: { data: unknown }) => void)[] = [];
		tabs.push(mine);
		return {
			postMessage(data) {
				for (const other of tabs) if (other !== mine) other.forEach((l) => queueMicrotask(() => l({ data })));
			},
			addEventListener(_type, listener) {
				mine.push(listener);
			}
		};
	};
	return { locks, channel };
}

/** A fake API: the cookie holds a single-use token; a reused one revokes the session. */
function api() {
	let cookie = 1;
	let revoked = false;
	let calls = 0;
	return {
		get calls() {
			return calls;
		},
		get revoked() {
			return revoked;
		},
		request: async (): Promise<Grant | null> => {
			calls += 1;
			const sent = cookie;
			await new Promise((r) => setTimeout(r, 5));
			if (revoked || sent !== cookie) {
				revoked = true; // reuse detection
				return null;
			}
			cookie += 1;
			return { token: `access-${cookie}`, expiresAt: Date.now() + 900_000 };
		}
	};
}

describe('createRefresher', () => {
	it('shares one refresh between the callers of a tab', async () => {
		const server = api();
		const tab = createRefresher({ request: server.request });
		const tokens = await Promise.all([tab.token(), tab.token(), tab.refresh()]);
		expect(server.calls).toBe(1);
		expect(tokens.map((t) => (typeof t === 'string' ? t : t?.token))).toEqual(['access-2', 'access-2', 'access-2']);
		expect(await tab.token()).toBe('access-2'); // still fresh: no call
		expect(server.calls).toBe(1);
	});

	it('never lets two tabs present the same cookie, so reuse detection stays quiet', async () => {
		const server = api();
		const { locks, channel } = browser();
		const a = createRefresher({ request: server.request, locks, channel: channel() });
		const b = createRefresher({ request: server.request, locks, channel: channel() });
		const [ta, tb] = await Promise.all([a.token(), b.token()]);
		expect(server.revoked).toBe(false);
		expect(ta).toBe('access-2');
		expect(tb).toBe('access-2'); // b waited for the lock and took a's broadcast token
		expect(server.calls).toBe(1);
		// Both expire: both refresh at once, in turn, each with the cookie of the one before.
		await Promise.all([a.refresh(), b.refresh()]);
		expect(server.revoked).toBe(false);
	});

	it('without the lock two tabs would trip reuse detection (what the lock prevents)', async () => {
		const server = api();
		const a = createRefresher({ request: server.request });
		const b = createRefresher({ request: server.request });
		await Promise.all([a.refresh(), b.refresh()]);
		expect(server.revoked).toBe(true);
	});

	it('refreshes ahead of expiry and spreads a sign-out to the other tabs', async () => {
		let clock = 1_000_000;
		const { locks, channel } = browser();
		let n = 0;
		const request = async () => ({ token: `t${++n}`, expiresAt: clock + 60_000 });
		const a = createRefresher({ request, locks, channel: channel(), now: () => clock });
		const b = createRefresher({ request, locks, channel: channel(), now: () => clock });
		expect(await a.token()).toBe('t1');
		clock += 31_000; // within 30 s of expiry
		expect(await a.token()).toBe('t2');
		await new Promise((r) => setTimeout(r, 0));
		expect(b.current()?.token).toBe('t2');
		a.set(null);
		await new Promise((r) => setTimeout(r, 0));
		expect(b.current()).toBeNull();
	});
});
