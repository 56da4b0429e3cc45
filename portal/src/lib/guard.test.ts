import { describe, expect, it } from 'vitest';
import { isPublic, safeNext } from './guard';

describe('guard', () => {
	it('knows the public pages', () => {
		expect(isPublic('/login')).toBe(true);
		expect(isPublic('/reset-password')).toBe(true);
		expect(isPublic('/loginx')).toBe(false);
		expect(isPublic('/')).toBe(false);
		expect(isPublic('/billing')).toBe(false);
	});

	it('only follows next to a path of this site', () => {
		expect(safeNext('/tenants/abc')).toBe('/tenants/abc');
		expect(safeNext('//evil.example/')).toBe('/');
		expect(safeNext('/\\evil.example')).toBe('/');
		expect(safeNext('https://evil.example/')).toBe('/');
		expect(safeNext('/login')).toBe('/');
		expect(safeNext(null)).toBe('/');
	});
});
