// Usage graphs of a tenant: the API's archive (GET /api/v1/user/tenants/{id}/metrics), the
// charts drawn from it, and the same figures as text for anyone who cannot see a chart.

export type Timeframe = 'hour' | 'day' | 'week' | 'month';
export const TIMEFRAMES: readonly Timeframe[] = ['hour', 'day', 'week', 'month'];

export interface UsagePoint {
	time: number;
	cpu?: number | null;
	maxcpu?: number | null;
	mem?: number | null;
	maxmem?: number | null;
	netin?: number | null;
	netout?: number | null;
	diskread?: number | null;
	diskwrite?: number | null;
}

export interface Usage {
	timeframe: Timeframe;
	step_s: number;
	read_at: string | null;
	points: UsagePoint[];
}

type Key = Exclude<keyof UsagePoint, 'time'>;

export interface Series {
	key: Key;
	label: string;
	scale: number; // the API's value x scale = the value in the chart's unit
}

export interface Chart {
	id: string;
	title: string;
	unit: string;
	series: Series[];
}

const MiB = 2 ** 20;
export const CHARTS: Chart[] = [
	{ id: 'cpu', title: 'CPU', unit: '%', series: [{ key: 'cpu', label: 'CPU', scale: 100 }] },
	{
		id: 'mem',
		title: 'Memory',
		unit: 'MiB',
		series: [
			{ key: 'mem', label: 'Used', scale: 1 / MiB },
			{ key: 'maxmem', label: 'Limit', scale: 1 / MiB }
		]
	},
	{
		id: 'net',
		title: 'Network',
		unit: 'KiB/s',
		series: [
			{ key: 'netin', label: 'In', scale: 1 / 1024 },
			{ key: 'netout', label: 'Out', scale: 1 / 1024 }
		]
	},
	{
		id: 'disk',
		title: 'Disk',
		unit: 'KiB/s',
		series: [
			{ key: 'diskread', label: 'Read', scale: 1 / 1024 },
			{ key: 'diskwrite', label: 'Write', scale: 1 / 1024 }
		]
	}
];

export const TIMEFRAME_WORDS: Record<Timeframe, string> = {
	hour: 'Last hour',
	day: 'Last day',
	week: 'Last week',
	month: 'Last month'
};

export function figure(value: number | null | undefined): string {
	if (value === null || value === undefined || Number.isNaN(value)) return '–';
	return Math.abs(value) < 10 ? value.toFixed(2) : Math.round(value).toLocaleString('en');
}

export function heading(chart: Chart, s: Series): string {
	const name = chart.series.length > 1 ? `${chart.title}: ${s.label}` : chart.title;
	return chart.unit ? `${name} (${chart.unit})` : name;
}

/** The values of one series in its chart's unit, null where a point has none. */
export function column(points: UsagePoint[], s: Series): (number | null)[] {
	return points.map((p) => {
		const v = p[s.key];
		return v === null || v === undefined ? null : v * s.scale;
	});
}

export interface SummaryRow {
	label: string;
	latest: string;
	mean: string;
	peak: string;
}

/** Latest, average and peak of every series: the charts in words. */
export function summary(points: UsagePoint[], charts: Chart[] = CHARTS): SummaryRow[] {
	return charts.flatMap((chart) =>
		chart.series.map((s) => {
			const values = column(points, s).filter((v): v is number => v !== null);
			const mean = values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
			return {
				label: heading(chart, s),
				latest: figure(values.at(-1)),
				mean: figure(mean),
				peak: figure(values.length ? Math.max(...values) : null)
			};
		})
	);
}

export function pointTime(epochSeconds: number): string {
	return new Date(epochSeconds * 1000).toISOString().slice(0, 16).replace('T', ' ');
}
