// App management inside a tenant (the control plane's apps/ routes).

export interface ServiceState {
	load_state: string;
	active_state: string;
	sub_state: string;
	main_pid: number | null;
	restarts: number | null;
	active_since: string | null;
	result: string | null;
}

export interface AppRun {
	id: string;
	kind: 'restart' | 'action';
	name: string;
	command: string;
	actor: string;
	status: 'running' | 'done' | 'failed' | 'timeout';
	exit_status: number | null;
	stdout: string;
	stderr: string;
	error: string | null;
	started_at: string;
	finished_at: string | null;
}

export interface AppStatus {
	service: string | null;
	state: ServiceState | null;
	health: { health: string | null; observed_at: string | null };
	actions: { name: string; confirm: boolean }[];
	runs: AppRun[];
}

export interface AppLogs {
	service: string;
	lines: string[];
	truncated: boolean;
}

/** A one-line summary of a unit's state, in systemd's words. */
export function stateWords(state: ServiceState | null): string {
	if (!state) return 'unknown';
	if (state.load_state === 'not-found') return 'not installed in the container';
	const since = state.active_since ? ` since ${state.active_since}` : '';
	return `${state.active_state} (${state.sub_state})${state.active_state === 'active' ? since : ''}`;
}

export function runWords(run: AppRun): string {
	if (run.status === 'running') return 'running…';
	if (run.status === 'timeout') return 'timed out';
	if (run.exit_status === null) return `failed: ${run.error ?? 'unknown error'}`;
	return run.exit_status === 0 ? 'done (exit 0)' : `failed (exit ${run.exit_status})`;
}
