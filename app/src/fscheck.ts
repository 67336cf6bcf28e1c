// Start-up check: the state directories must be writable by the process (uid 1000 in the image).
// A root-owned bind mount is the classic first-deploy mistake; say exactly how to fix it.

import { accessSync, constants, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

function uidText(): string {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  return uid === undefined ? "this process" : `uid ${uid}${gid === undefined ? "" : ` (gid ${gid})`}`;
}

function checkDir(dir: string, hostName: string): string | null {
  try {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true });
    const probe = join(dir, `.write-probe-${process.pid}`);
    writeFileSync(probe, "");
    rmSync(probe);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "error";
    return (
      `${dir} is not writable by ${uidText()} (${code}): ` +
      `${hostName} must be owned by uid 1000: chown -R 1000:1000 ${hostName}`
    );
  }
}

/** Returns a list of problems (empty when fine). */
export function checkStateDirs(dbPath: string, uploadsDir: string): string[] {
  const problems: string[] = [];
  const dataDir = dirname(dbPath);
  const d = checkDir(dataDir, "STATE_DIR/data");
  if (d) problems.push(`DB_PATH directory ${d}`);
  else {
    // An existing database (or its WAL/SHM) copied in as root is just as fatal.
    for (const f of [dbPath, `${dbPath}-wal`, `${dbPath}-shm`]) {
      if (!existsSync(f)) continue;
      try {
        accessSync(f, constants.R_OK | constants.W_OK);
      } catch {
        problems.push(
          `${f} is not readable and writable by ${uidText()}: STATE_DIR/data must be owned by uid 1000: chown -R 1000:1000 STATE_DIR/data`,
        );
      }
    }
  }
  const u = checkDir(uploadsDir, "STATE_DIR/uploads");
  if (u) problems.push(`UPLOADS_DIR ${u}`);
  return problems;
}
