import { describe, expect, it } from 'vitest';
import { CHARTS, column, figure, pointTime, summary, type UsagePoint } from './usage';

const points: UsagePoint[] = [
	{ time: 1_700_000_040, cpu: 0.1, mem: 64 * 2 ** 20, maxmem: 512 * 2 ** 20, netin: 2048 },
	{ time: 1_700_000_100 },
	{ time: 1_700_000_160, cpu: 0.3, mem: 128 * 2 ** 20, maxmem: 512 * 2 ** 20, netin: 1024 }
];

describe('usage', () => {
	it('scales each series to its unit, keeping gaps', () => {
		expect(column(points, CHARTS[0].series[0])).toEqual([10, null, 30]);
		expect(column(points, CHARTS[1].series[0])).toEqual([64, null, 128]);
	});

	it('says the charts in words: latest, average, peak', () => {
		const rows = summary(points);
		expect(rows[0]).toEqual({ label: 'CPU (%)', latest: '30', mean: '20', peak: '30' });
		expect(rows.find((r) => r.label === 'Memory: Used (MiB)')).toMatchObject({ latest: '128', peak: '128' });
		expect(rows.find((r) => r.label === 'Network: In (KiB/s)')).toMatchObject({ latest: '1.00', mean: '1.50', peak: '2.00' });
		expect(rows.find((r) => r.label === 'Disk: Read (KiB/s)')).toEqual({
			label: 'Disk: Read (KiB/s)',
			latest: '–',
			mean: '–',
			peak: '–'
		});
	});

	it('formats figures and times', () => {
		expect(figure(null)).toBe('–');
		expect(figure(1234.4)).toBe('1,234');
		expect(figure(0.125)).toBe('0.13');
		expect(pointTime(1_700_000_040)).toBe('2023-11-14 22:14');
	});
});
