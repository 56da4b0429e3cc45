// One refresh in flight for all the tabs of a browser.
//
// The refresh token lives in an HttpOnly cookie every tab shares, and it is single use: two
// tabs refreshing with the same cookie at once would look like a stolen token to the API,
// which then revokes the whole session. So refreshes are serialised across tabs with the
// Web Locks API, and the tab that refreshed tells the others the new access token over a
// BroadcastChannel (memory to memory: nothing is ever written to storage). A tab that was
// waiting for the lock and got a token meanwhile does not refresh at all. Within a tab, all
// callers share the one promise. Without Web Locks (plain-HTTP hosts other than localhost)
// only the in-tab sharing remains.

export interface Grant {
	token: string;
	expiresAt: number; // ms since the epoch
}

export interface LockManagerLike {
	request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

export interface ChannelLike {
	postMessage(message: unknown): void;
	addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

export type Message = { type: 'grant'; grant: Grant } | { type: 'signed-out' };

export const LOCK_NAME = 'controlplane-portal-refresh';
const MARGIN_MS = 30_000; // refresh this long before the access token expires

export interface Refresher {
	current(): Grant | null;
	/** A usable access token, refreshing first when there is none or it is about to expire. */
	token(): Promise<string | null>;
	/** Ask the API for a new access token (with the cookie); null when there is no session. */
	refresh(): Promise<Grant | null>;
	set(grant: Grant | null): void;
	onChange(listener: (grant: Grant | null) => void): void;
}

export function createRefresher(options: {
	request: () => Promise<Grant | null>;
	locks?: LockManagerLike | null;
	channel?: ChannelLike | null;
	now?: () => number;
}): Refresher {
	const now = options.now ?? Date.now;
	let grant: Grant | null = null;
	let version = 0;
	let inflight: Promise<Grant | null> | null = null;
	const listeners: ((grant: Grant | null) => void)[] = [];

	const apply = (next: Grant | null) => {
		grant = next;
		version += 1;
		for (const listener of listeners) listener(next);
	};
	const usable = (g: Grant | null) => g !== null && g.expiresAt - now() > MARGIN_MS;

	options.channel?.addEventListener('message', (event) => {
		const message = event.data as Message;
		if (message?.type === 'grant' && message.grant && (!grant || message.grant.expiresAt >= grant.expiresAt)) {
			apply(message.grant);
		} else if (message?.type === 'signed-out') {
			apply(null);
		}
	});

	const set = (next: Grant | null) => {
		apply(next);
		options.channel?.postMessage(next ? { type: 'grant', grant: next } : { type: 'signed-out' });
	};

	const refresh = () => {
		if (inflight) return inflight;
		const asked = version;
		const run = async () => {
			// Another tab refreshed while this one waited for the lock: use its token.
			if (version !== asked && usable(grant)) return grant;
			const next = await options.request();
			set(next);
			return next;
		};
		inflight = (options.locks ? options.locks.request(LOCK_NAME, run) : run()).finally(() => {
			inflight = null;
		});
		return inflight;
	};

	return {
		current: () => grant,
		async token() {
			if (usable(grant)) return grant!.token;
			return (await refresh())?.token ?? null;
		},
		refresh,
		set,
		onChange(listener) {
			listeners.push(listener);
		}
	};
}
