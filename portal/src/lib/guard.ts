// Pages anyone may open; every other page needs a session.
export const PUBLIC_PAGES = ['/login', '/signup', '/verify-email', '/forgot-password', '/reset-password'];

export function isPublic(path: string): boolean {
	return PUBLIC_PAGES.some((p) => path === p || path.startsWith(p + '/'));
}

/** Where to go after logging in: only a path of this site, never another origin. */
export function safeNext(next: string | null): string {
	if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return '/';
	return isPublic(next) ? '/' : next;
}
