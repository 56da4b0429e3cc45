// The first-load budget, measured on the build: the gzipped JavaScript a browser fetches to
// show each page when it opens the portal at that page (the entry points, the root layout,
// the page's own node, and everything they import statically). Prints the figure of every
// page, writes build/budget.json, and fails the build when the heaviest exceeds the budget.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET_KB = 100;
const client = '.svelte-kit/output/client';
const manifest = JSON.parse(readFileSync(`${client}/.vite/manifest.json`, 'utf8'));
const gz = (file) => gzipSync(readFileSync(`${client}/${file}`), { level: 9 }).length;

function closure(keys) {
	const seen = new Set();
	const visit = (key) => {
		if (seen.has(key)) return;
		seen.add(key);
		for (const dep of manifest[key].imports ?? []) visit(dep);
	};
	keys.forEach(visit);
	return [...seen].map((key) => manifest[key].file);
}

const entries = Object.keys(manifest).filter((k) => /entry\/(start|app)/.test(manifest[k].name));
const layout = Object.keys(manifest).find((k) => manifest[k].name === 'nodes/0');
const pages = Object.keys(manifest).filter((k) => /^nodes\/([2-9]|\d\d+)$/.test(manifest[k].name));
const report = pages.map((page) => {
	const files = closure([...entries, layout, page]);
	const bytes = files.reduce((sum, file) => sum + gz(file), 0);
	return { node: manifest[page].name, src: manifest[page].src, files: files.length, gzip_bytes: bytes };
});
report.sort((a, b) => b.gzip_bytes - a.gzip_bytes);
const worst = report[0]?.gzip_bytes ?? 0;
const result = { budget_kb: BUDGET_KB, worst_first_load_gzip_kb: +(worst / 1024).toFixed(1), pages: report };
writeFileSync('build/budget.json', JSON.stringify(result, null, 2) + '\n');
console.log(
	`first-load JavaScript (gzip): heaviest page ${result.worst_first_load_gzip_kb} KB ` +
		`(budget ${BUDGET_KB} KB; ${report.length} pages; build/budget.json)`
);
if (worst > BUDGET_KB * 1024) {
	console.error(`over the budget of ${BUDGET_KB} KB`);
	process.exit(1);
}
