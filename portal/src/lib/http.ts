// The one place that talks HTTP to the control plane. Same origin by default (the control
// plane serves the portal); VITE_API_BASE points a dev build at another origin (CORS).
import { networkError, toApiError } from './errors';

export const API_BASE: string = import.meta.env.VITE_API_BASE ?? '';

export async function send(method: string, path: string, body: unknown, token: string | null, signal?: AbortSignal): Promise<Response> {
	const headers: Record<string, string> = { Accept: 'application/json' };
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	if (token) headers.Authorization = `Bearer ${token}`;
	try {
		return await fetch(API_BASE + path, {
			method,
			headers,
			body: body === undefined ? undefined : JSON.stringify(body),
			credentials: 'include', // the refresh cookie (only /api/v1/auth ever gets it)
			cache: 'no-store',
			signal
		});
	} catch (error) {
		if (signal?.aborted) throw error;
		throw networkError();
	}
}

/** The parsed JSON answer, or an ApiError for anything but 2xx. */
export async function read<T>(response: Response): Promise<T> {
	const text = await response.text();
	let body: unknown = null;
	try {
		body = text ? JSON.parse(text) : null;
	} catch {
		body = null;
	}
	if (!response.ok) throw toApiError(response.status, body, response.headers.get('Retry-After'));
	return body as T;
}
