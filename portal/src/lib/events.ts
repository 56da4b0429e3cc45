// Live changes of the user's tenants: `GET /api/v1/user/events`, Server-Sent Events read
// with fetch streaming (EventSource cannot send the Authorization header). One stream per
// tab, shared by every page that listens; it reconnects with Last-Event-ID so nothing is
// missed, refreshes the access token when the API says 401, and backs off on failures.
// Each (re)connection also calls the listeners' `resync`, so a page reloads what it shows
// once in case the server could not resume from the last id.
import { API_BASE } from './http';
import { refresher } from './session.svelte';
import { SseParser } from './sse';
import type { Tenant } from './types';

export interface Listener {
	tenant(tenant: Tenant): void;
	resync?(): void;
	live?(connected: boolean): void;
}

const POLL_MS = 2000;
const listeners = new Set<Listener>();
let controller: AbortController | null = null;
let lastEventId: string | null = null;
let connected = false;

function setConnected(value: boolean) {
	connected = value;
	for (const l of listeners) l.live?.(value);
}

const sleep = (ms: number, signal: AbortSignal) =>
	new Promise<void>((resolve) => {
		const timer = setTimeout(resolve, ms);
		signal.addEventListener('abort', () => {
			clearTimeout(timer);
			resolve();
		});
	});

async function run(signal: AbortSignal): Promise<void> {
	let failures = 0;
	while (!signal.aborted) {
		try {
			let token = await refresher.token();
			if (!token) return;
			const headers: Record<string, string> = { Accept: 'text/event-stream', Authorization: `Bearer ${token}` };
			if (lastEventId !== null) headers['Last-Event-ID'] = lastEventId;
			let response = await fetch(`${API_BASE}/api/v1/user/events`, { headers, signal, cache: 'no-store' });
			if (response.status === 401) {
				token = (await refresher.refresh())?.token ?? null;
				if (!token) return;
				headers.Authorization = `Bearer ${token}`;
				response = await fetch(`${API_BASE}/api/v1/user/events`, { headers, signal, cache: 'no-store' });
			}
			if (response.status === 404) {
				// A control plane without the events route: reload what the pages show instead.
				setConnected(false);
				for (const l of listeners) l.resync?.();
				await sleep(POLL_MS, signal);
				continue;
			}
			if (!response.ok || !response.body) throw new Error(`events answered ${response.status}`);
			failures = 0;
			setConnected(true);
			for (const l of listeners) l.resync?.();
			const parser = new SseParser();
			parser.lastEventId = lastEventId;
			const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
			for (;;) {
				const { value, done } = await reader.read();
				if (done) break;
				for (const event of parser.push(value)) {
					lastEventId = event.id;
					if (event.event !== 'tenant') continue;
					let tenant: Tenant;
					try {
						tenant = JSON.parse(event.data) as Tenant;
					} catch {
						continue;
					}
					for (const l of listeners) l.tenant(tenant);
				}
			}
		} catch {
			if (signal.aborted) return;
			failures += 1;
		}
		setConnected(false);
		// 0.5 s, 1 s, 2 s ... at most 15 s between attempts.
		await sleep(Math.min(15_000, 500 * 2 ** Math.min(failures, 5)), signal);
	}
}

/** Listen to tenant changes; returns the function that stops listening. */
export function listen(listener: Listener): () => void {
	listeners.add(listener);
	if (!controller) {
		controller = new AbortController();
		const mine = controller;
		void run(mine.signal).finally(() => {
			if (controller === mine) controller = null;
			setConnected(false);
		});
	} else if (connected) {
		listener.live?.(true);
	}
	return () => {
		listeners.delete(listener);
		if (listeners.size === 0 && controller) {
			controller.abort();
			controller = null;
		}
	};
}

/** Merge one changed tenant into a list (newest first for new ones). */
export function merge(list: Tenant[], changed: Tenant): Tenant[] {
	const index = list.findIndex((t) => t.id === changed.id);
	if (index === -1) return changed.status === 'deleted' ? list : [changed, ...list];
	if (list[index].updated_at > changed.updated_at) return list; // an older event than what we show
	const next = list.slice();
	next[index] = changed;
	return next;
}
