// Who is signed in. The access token lives in this module's memory only; the refresh token
// is an HttpOnly cookie the API sets (`refresh_in_cookie`), which no script can read.
import { read, send } from './http';
import { createRefresher, type Grant } from './refresh';
import type { TokenAnswer, User } from './types';

// `leaving`: the user chose to sign out and the page says where to go next, so the
// layout must not send them to the login page first.
export const auth = $state({ user: null as User | null, checked: false, leaving: false });

function grantOf(answer: TokenAnswer): Grant {
	return { token: answer.access_token, expiresAt: Date.now() + answer.expires_in * 1000 };
}

async function requestRefresh(): Promise<Grant | null> {
	const response = await send('POST', '/api/v1/auth/refresh', {}, null);
	if (response.status === 401 || response.status === 400 || response.status === 422) return null;
	return grantOf(await read<TokenAnswer>(response));
}

const browser = typeof window !== 'undefined';
export const refresher = createRefresher({
	request: requestRefresh,
	locks: browser && 'locks' in navigator ? navigator.locks : null,
	channel: browser && 'BroadcastChannel' in window ? new BroadcastChannel('controlplane-portal-auth') : null
});
refresher.onChange((grant) => {
	if (grant === null) auth.user = null;
});

async function loadUser(token: string): Promise<void> {
	auth.user = await read<User>(await send('GET', '/api/v1/auth/me', undefined, token));
}

/** At start-up: a session from the cookie, if there is one. Never throws. */
export async function restore(): Promise<void> {
	try {
		const token = await refresher.token();
		if (token) await loadUser(token);
	} catch {
		auth.user = null;
	} finally {
		auth.checked = true;
	}
}

export async function login(email: string, password: string): Promise<void> {
	const answer = await read<TokenAnswer>(
		await send('POST', '/api/v1/auth/login', { email, password, refresh_in_cookie: true }, null)
	);
	const grant = grantOf(answer);
	await loadUser(grant.token);
	refresher.set(grant);
}

/** Replace the access token after a call that issued a new one (a password change). */
export function adopt(answer: TokenAnswer): void {
	refresher.set(grantOf(answer));
}

export async function logout(): Promise<void> {
	try {
		await send('POST', '/api/v1/auth/logout', {}, null);
	} finally {
		refresher.set(null);
	}
}

/** Forget the session locally (after logout-all, or when the API refused the token). */
export function forget(): void {
	refresher.set(null);
}
