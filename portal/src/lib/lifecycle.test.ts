import { describe, expect, it } from 'vitest';
import { formatBytes, operationWords, resizeBody, scheduleBody, scheduleForm, type ScheduleForm } from './lifecycle';

const FORM: ScheduleForm = { frequency: 'daily', at: '03:00', weekday: '0', keep_last: '1', keep_daily: '0', keep_weekly: '0' };

describe('lifecycle words', () => {
	it('formats sizes', () => {
		expect(formatBytes(null)).toBe('–');
		expect(formatBytes(-1)).toBe('–');
		expect(formatBytes(0)).toBe('0 B');
		expect(formatBytes(1023)).toBe('1023 B');
		expect(formatBytes(1536)).toBe('1.5 KiB');
		expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB');
		expect(formatBytes(3.25 * 1024 ** 3)).toBe('3.3 GiB');
		expect(formatBytes(5 * 1024 ** 5)).toBe('5120 TiB');
	});

	it('words operations in progress and ended', () => {
		expect(operationWords({ id: 'x', kind: 'snapshot_create', status: 'running', step: 'wait_task' })).toBe(
			'Taking a snapshot (step wait task, in progress)…'
		);
		expect(operationWords({ id: 'x', kind: 'restart', status: 'queued', step: null })).toBe('Restarting (waiting to start)…');
		expect(operationWords({ id: 'x', kind: 'backup_create', status: 'succeeded', step: null })).toBe('Backup made.');
		expect(operationWords({ id: 'x', kind: 'move', status: 'running', step: null })).toBe('Moving to another server (in progress)…');
		expect(operationWords({ id: 'x', kind: 'rebuild', status: 'failed', step: 'clone' })).toBe('Rebuilding the container failed.');
	});
});

describe('the schedule form', () => {
	it('starts from the schedule or the defaults', () => {
		expect(scheduleForm(null)).toEqual(FORM);
		const weekly = scheduleForm({
			frequency: 'weekly', at: '04:30:00', weekday: 6, keep_last: 2, keep_daily: 0, keep_weekly: 4,
			next_run_at: '', last_run_at: null
		});
		expect(weekly).toMatchObject({ frequency: 'weekly', at: '04:30', weekday: '6', keep_last: '2', keep_weekly: '4' });
	});

	it('builds the body: a weekday only for a weekly schedule', () => {
		expect(scheduleBody(FORM)).toEqual({
			body: { frequency: 'daily', at: '03:00', keep_last: 1, keep_daily: 0, keep_weekly: 0 },
			errors: {}
		});
		expect(scheduleBody({ ...FORM, frequency: 'weekly', weekday: '2' }).body).toMatchObject({ weekday: 2 });
	});

	it('names each bad field', () => {
		expect(scheduleBody({ ...FORM, at: '24:00' }).errors).toEqual({ at: 'A time of day as HH:MM (UTC).' });
		expect(scheduleBody({ ...FORM, at: '3:00' }).errors).toHaveProperty('at');
		expect(scheduleBody({ ...FORM, frequency: 'weekly', weekday: '7' }).errors).toHaveProperty('weekday');
		expect(scheduleBody({ ...FORM, keep_daily: '-1' }).errors).toHaveProperty('keep_daily');
		expect(scheduleBody({ ...FORM, keep_weekly: '101' }).errors).toHaveProperty('keep_weekly');
		expect(scheduleBody({ ...FORM, keep_last: '1.5' }).errors).toHaveProperty('keep_last');
		const none = scheduleBody({ ...FORM, keep_last: '0' });
		expect(none.body).toBeNull();
		expect(none.errors).toEqual({ keep_last: 'Keep at least one backup.' });
	});
});

describe('resize', () => {
	const now = { ram_mb: 512, cores: 1, disk_gb: 8 };
	it('sends only what changed', () => {
		expect(resizeBody(now, { ...now })).toBeNull();
		expect(resizeBody(now, { ...now, cores: 2 })).toEqual({ cores: 2 });
		expect(resizeBody(now, { ram_mb: 1024, cores: 1, disk_gb: 16 })).toEqual({ ram_mb: 1024, disk_gb: 16 });
		expect(resizeBody({ ram_mb: 512, cores: 1, disk_gb: null }, { ram_mb: 512, cores: 1, disk_gb: null })).toBeNull();
	});
});
