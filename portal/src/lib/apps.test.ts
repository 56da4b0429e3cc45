import { describe, expect, it } from 'vitest';
import { runWords, stateWords, type AppRun } from './apps';

const run = (over: Partial<AppRun>): AppRun => ({
	id: '1', kind: 'action', name: 'migrate', command: 'x', actor: 'user:1', status: 'done',
	exit_status: 0, stdout: '', stderr: '', error: null, started_at: '', finished_at: null, ...over
});

describe('apps', () => {
	it('words a unit state', () => {
		expect(stateWords(null)).toBe('unknown');
		expect(stateWords({ load_state: 'loaded', active_state: 'active', sub_state: 'running', main_pid: 1, restarts: 0, active_since: 'Thu', result: 'success' })).toBe('active (running) since Thu');
		expect(stateWords({ load_state: 'not-found', active_state: 'inactive', sub_state: 'dead', main_pid: null, restarts: 0, active_since: null, result: null })).toBe('not installed in the container');
	});

	it('words a run', () => {
		expect(runWords(run({}))).toBe('done (exit 0)');
		expect(runWords(run({ status: 'failed', exit_status: 3 }))).toBe('failed (exit 3)');
		expect(runWords(run({ status: 'timeout', exit_status: null }))).toBe('timed out');
		expect(runWords(run({ status: 'failed', exit_status: null, error: 'refused' }))).toBe('failed: refused');
	});
});
