// Calls to the API as the signed-in user: the access token, one retry after a refresh when
// the API says 401, and an ApiError for every failure (see errors.ts).
import { ApiError } from './errors';
import { read, send } from './http';
import { forget, refresher } from './session.svelte';

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
	let token = await refresher.token();
	if (!token) {
		forget();
		throw new ApiError(401, 'unauthorized', 'Your session has ended; log in again.');
	}
	let response = await send(method, path, body, token);
	if (response.status === 401) {
		token = (await refresher.refresh())?.token ?? null;
		if (!token) {
			forget();
			throw new ApiError(401, 'unauthorized', 'Your session has ended; log in again.');
		}
		response = await send(method, path, body, token);
	}
	if (response.status === 204) return undefined as T;
	return read<T>(response);
}

/** Calls that need no session (sign-up, verification, reset, the public config). */
export async function publicApi<T>(method: string, path: string, body?: unknown): Promise<T> {
	const response = await send(method, path, body, null);
	if (response.status === 204 || response.status === 202) {
		const text = await response.text();
		return (text ? JSON.parse(text) : undefined) as T;
	}
	return read<T>(response);
}
