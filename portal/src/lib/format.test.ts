import { describe, expect, it } from 'vitest';
import { duration, healthWords, megabytes, price, reasonWords, stepWords } from './format';
import { merge } from './events';
import type { Tenant } from './types';

describe('format', () => {
	it('words durations', () => {
		expect(duration(-5)).toBe('0 s');
		expect(duration(42_900)).toBe('42 s');
		expect(duration(185_000)).toBe('3 min 05 s');
		expect(duration((2 * 3600 + 7 * 60) * 1000)).toBe('2 h 07 min');
		expect(duration(5 * 86_400_000)).toBe('5 days');
	});

	it('words steps and reasons, unknown ones too', () => {
		expect(stepWords('clone')).toBe('Copying the template');
		expect(stepWords('warm_up')).toBe('Warm up');
		expect(stepWords(null)).toBeNull();
		expect(reasonWords('no_capacity')).toMatch(/no room/);
		expect(reasonWords('disk_full')).toBe('Disk full.');
		expect(reasonWords(null)).toMatch(/went wrong/);
		expect(reasonWords('node_unavailable')).toMatch(/could not be reached/);
		expect(healthWords('app_error')).toBe('Its app answers with errors');
		expect(healthWords('new_word')).toBe('New word');
		expect(healthWords(null)).toBeNull();
	});

	it('words sizes and prices', () => {
		expect(megabytes(512)).toBe('512 MB');
		expect(megabytes(4096)).toBe('4 GB');
		expect(price(900)).toBe('$9.00 a month');
		expect(price(0)).toBe('free');
	});
});

describe('merge', () => {
	const t = (id: string, status: Tenant['status'], updated: string): Tenant => ({
		id,
		name: id,
		subdomain: id,
		url: `https://${id}.example/`,
		status,
		project_id: null,
		health: null,
		created_at: '2026-01-01T00:00:00Z',
		updated_at: updated,
		deleted_at: null
	});

	it('replaces by id, adds new ones first, ignores older events', () => {
		const list = [t('a', 'provisioning', '2026-01-01T00:00:01Z')];
		expect(merge(list, t('a', 'active', '2026-01-01T00:00:02Z'))[0].status).toBe('active');
		expect(merge(list, t('a', 'error', '2026-01-01T00:00:00Z'))[0].status).toBe('provisioning');
		expect(merge(list, t('b', 'provisioning', '2026-01-01T00:00:03Z')).map((x) => x.id)).toEqual(['b', 'a']);
		expect(merge(list, t('c', 'deleted', '2026-01-01T00:00:03Z'))).toHaveLength(1);
	});
});
