/**
 * Static checks on a golang-migrate folder, run by `./dev check-migrations` and CI: every version
 * has exactly one up and one down file, versions run 1, 2, 3... without gaps, and each version lies
 * in the range of the service that owns it.
 */
import { readdirSync } from "node:fs";

/**
 * The one table of which service owns which migration versions (lastVersion undefined: open-ended).
 * Versions run without gaps, so a service's next migration opens a new row here.
 */
export const serviceRanges = [
  { service: "control plane", firstVersion: 1, lastVersion: 5 },
  { service: "data plane", firstVersion: 6, lastVersion: 7 },
  { service: "control plane", firstVersion: 8, lastVersion: 8 },
  { service: "data plane", firstVersion: 9, lastVersion: 9 },
  { service: "control plane", firstVersion: 10, lastVersion: 10 },
  { service: "data plane", firstVersion: 11, lastVersion: 12 },
  { service: "control plane", firstVersion: 13, lastVersion: 13 },
  { service: "data plane", firstVersion: 14, lastVersion: undefined },
] as const;

export type ServiceName = (typeof serviceRanges)[number]["service"];

export function serviceOf(version: number): ServiceName | undefined {
  return serviceRanges.find((r) => version >= r.firstVersion && version <= (r.lastVersion ?? Infinity))
    ?.service;
}

const fileNamePattern = /^(\d+)_(.+)\.(up|down)\.sql$/;

export interface MigrationCheck {
  versions: number[];
  problems: string[];
}

export function checkMigrations(dir: string): MigrationCheck {
  const problems: string[] = [];
  // version -> direction -> file names; more than one name for a direction is a duplicate number.
  const files = new Map<number, { up: string[]; down: string[] }>();
  for (const file of readdirSync(dir).sort()) {
    const match = fileNamePattern.exec(file);
    if (!match) {
      // Other files (a README) are fine; a misnamed .sql file would be silently skipped by the runner.
      if (file.endsWith(".sql"))
        problems.push(`${file}: not named NNNNNN_name.up.sql or NNNNNN_name.down.sql`);
      continue;
    }
    const version = Number(match[1]);
    const direction = match[3] as "up" | "down";
    const entry = files.get(version) ?? { up: [], down: [] };
    entry[direction].push(file);
    files.set(version, entry);
  }

  const versions = [...files.keys()].sort((a, b) => a - b);
  for (const version of versions) {
    const { up, down } = files.get(version) as { up: string[]; down: string[] };
    if (up.length > 1) problems.push(`version ${version}: duplicate up files ${up.join(", ")}`);
    if (down.length > 1) problems.push(`version ${version}: duplicate down files ${down.join(", ")}`);
    if (up.length === 0) problems.push(`version ${version}: missing up file (have ${down.join(", ")})`);
    if (down.length === 0) problems.push(`version ${version}: missing down file (have ${up.join(", ")})`);
    if (!serviceOf(version))
      problems.push(`version ${version}: outside every service's range (${rangeTable()})`);
  }

  // Versions must be 1..N: a gap usually means a lost file or a number taken on another branch.
  const present = new Set(versions);
  const newest = versions.at(-1) ?? 0;
  for (let version = 1; version <= newest; version++) {
    if (!present.has(version)) problems.push(`version ${version}: missing (gap between 1 and ${newest})`);
  }
  return { versions, problems };
}

export function rangeTable(): string {
  return serviceRanges
    .map((r) => {
      if (r.lastVersion === undefined) return `${r.service} ${r.firstVersion}+`;
      const span = r.lastVersion === r.firstVersion ? "" : `-${r.lastVersion}`;
      return `${r.service} ${r.firstVersion}${span}`;
    })
    .join(", ");
}
