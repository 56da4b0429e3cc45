// The hosting lifecycle as the portal shows it: operations, snapshots, backups and the
// backup schedule (see README "The hosting lifecycle"), their words and the forms' rules.

export type OperationKind =
	| 'snapshot_create'
	| 'snapshot_delete'
	| 'snapshot_rollback'
	| 'backup_create'
	| 'backup_delete'
	| 'backup_restore'
	| 'rebuild'
	| 'resize'
	| 'restart'
	| 'move';
export type OperationStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** What the tenant's row carries while an operation holds it. */
export interface OperationSummary {
	id: string;
	kind: OperationKind;
	status: OperationStatus;
	step: string | null;
}

export interface Operation extends OperationSummary {
	tenant_id: string;
	params: Record<string, unknown>;
	error_reason: string | null;
	created_at: string;
	started_at: string | null;
	finished_at: string | null;
}

export interface Snapshot {
	name: string;
	description: string;
	status: 'creating' | 'ready' | 'deleting' | 'error';
	created_at: string;
}

export interface Backup {
	id: string;
	status: 'creating' | 'ready' | 'deleting' | 'error';
	scheduled: boolean;
	size_bytes: number | null;
	created_at: string;
	finished_at: string | null;
	expires_at: string | null;
}

export interface Schedule {
	frequency: 'daily' | 'weekly';
	at: string;
	weekday: number | null;
	keep_last: number;
	keep_daily: number;
	keep_weekly: number;
	next_run_at: string;
	last_run_at: string | null;
}

const KIND_WORDS: Record<OperationKind, string> = {
	snapshot_create: 'Taking a snapshot',
	snapshot_delete: 'Deleting a snapshot',
	snapshot_rollback: 'Rolling back to a snapshot',
	backup_create: 'Making a backup',
	backup_delete: 'Deleting a backup',
	backup_restore: 'Restoring a backup',
	rebuild: 'Rebuilding the container',
	resize: 'Resizing',
	restart: 'Restarting',
	move: 'Moving to another server'
};

const DONE_WORDS: Record<OperationKind, string> = {
	snapshot_create: 'Snapshot taken',
	snapshot_delete: 'Snapshot deleted',
	snapshot_rollback: 'Rolled back',
	backup_create: 'Backup made',
	backup_delete: 'Backup deleted',
	backup_restore: 'Backup restored',
	rebuild: 'Rebuilt',
	resize: 'Resized',
	restart: 'Restarted',
	move: 'Moved'
};

export const FINAL: ReadonlySet<OperationStatus> = new Set(['succeeded', 'failed']);

/** "Taking a snapshot (step create, running)", or what came of it once it ended. */
export function operationWords(op: OperationSummary): string {
	const kind = op.kind in KIND_WORDS ? op.kind : null;
	if (op.status === 'succeeded') return kind ? `${DONE_WORDS[kind]}.` : 'Done.';
	const what = kind ? KIND_WORDS[kind] : op.kind.replaceAll('_', ' ');
	if (op.status === 'failed') return `${what} failed.`;
	const step = op.step ? `step ${op.step.replaceAll('_', ' ')}, ` : '';
	return `${what} (${step}${op.status === 'queued' ? 'waiting to start' : 'in progress'})…`;
}

/** Sizes as people read them: 1 KiB = 1024 bytes, one decimal below 10. */
export function formatBytes(bytes: number | null | undefined): string {
	if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return '–';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let value = bytes;
	let unit = 0;
	while (value >= 1024 && unit < units.length - 1) {
		value /= 1024;
		unit += 1;
	}
	if (unit === 0) return `${bytes} B`;
	return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

export const WEEKDAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];

/** The schedule form as typed (inputs give text). */
export interface ScheduleForm {
	frequency: 'daily' | 'weekly';
	at: string;
	weekday: string;
	keep_last: string;
	keep_daily: string;
	keep_weekly: string;
}

export function scheduleForm(schedule: Schedule | null): ScheduleForm {
	return {
		frequency: schedule?.frequency ?? 'daily',
		at: schedule ? schedule.at.slice(0, 5) : '03:00',
		weekday: schedule?.weekday !== null && schedule?.weekday !== undefined ? String(schedule.weekday) : '0',
		keep_last: String(schedule?.keep_last ?? 1),
		keep_daily: String(schedule?.keep_daily ?? 0),
		keep_weekly: String(schedule?.keep_weekly ?? 0)
	};
}

const KEEPS = ['keep_last', 'keep_daily', 'keep_weekly'] as const;

function count(text: string): number | null {
	return /^\d{1,3}$/.test(text.trim()) && Number(text) <= 100 ? Number(text) : null;
}

/** The body for PUT .../backup-schedule, or the problems by field (the API's rules, so
 *  the form can say them before a round trip; the API still decides). */
export function scheduleBody(form: ScheduleForm): { body: Record<string, unknown> | null; errors: Record<string, string> } {
	const errors: Record<string, string> = {};
	if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(form.at)) errors.at = 'A time of day as HH:MM (UTC).';
	const body: Record<string, unknown> = { frequency: form.frequency, at: form.at };
	if (form.frequency === 'weekly') {
		const day = count(form.weekday);
		if (day === null || day > 6) errors.weekday = 'Pick a day of the week.';
		else body.weekday = day;
	}
	for (const keep of KEEPS) {
		const value = count(form[keep]);
		if (value === null) errors[keep] = 'A whole number from 0 to 100.';
		else body[keep] = value;
	}
	if (!KEEPS.some((k) => k in errors) && KEEPS.every((k) => body[k] === 0)) errors.keep_last = 'Keep at least one backup.';
	return Object.keys(errors).length ? { body: null, errors } : { body, errors };
}

export interface Size {
	ram_mb: number | null;
	cores: number | null;
	disk_gb: number | null;
}

/** The body for POST .../resize: only what changed; null when nothing did. */
export function resizeBody(now: Size, wanted: Size): Partial<Size> | null {
	const body: Partial<Size> = {};
	for (const key of ['ram_mb', 'cores', 'disk_gb'] as const) {
		const value = wanted[key];
		if (value !== null && value !== undefined && value !== now[key]) body[key] = value;
	}
	return Object.keys(body).length ? body : null;
}
