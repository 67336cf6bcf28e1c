// Uploads stream to disk: the multipart body is parsed as it arrives and the file part written chunk
// by chunk, so an upload holds a few chunks in memory whatever its size (reading the whole body, then
// a FormData of it, held about three times UPLOAD_MAX_BYTES per upload). Every byte is counted
// against the per-file limit and the user's quota as it arrives; the caller's `onBytes` throws to stop.

export class UploadError extends Error {
  constructor(
    readonly status: 400 | 413 | 429 | 507,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FilePart {
  /** the part's filename= (raw; the caller cleans it) */
  name: string;
  /** the part's declared Content-Type, null when absent */
  type: string | null;
  size: number;
}

const HEADER_MAX = 16 * 1024;
/** fields other than the file are skipped, but only this much of them */
const OTHER_PART_MAX = 64 * 1024;
const CRLF2 = Buffer.from("\r\n\r\n");

export function boundaryOf(contentType: string): string | null {
  if (!/^multipart\/form-data\s*;/i.test(contentType.trim())) return null;
  const b = /boundary=(?:"([^"]{1,70})"|([^;\s]{1,70}))/i.exec(contentType);
  return b?.[1] ?? b?.[2] ?? null;
}

function partHeaders(text: string): { name: string | null; filename: string | null; type: string | null } {
  let name: string | null = null;
  let filename: string | null = null;
  let type: string | null = null;
  for (const line of text.split("\r\n")) {
    const i = line.indexOf(":");
    if (i < 0) continue;
    const key = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (key === "content-disposition") {
      name = /(?:^|;)\s*name="([^"]*)"/i.exec(value)?.[1] ?? null;
      filename = /(?:^|;)\s*filename="([^"]*)"/i.exec(value)?.[1] ?? null;
    } else if (key === "content-type") type = value;
  }
  return { name, filename, type };
}

/**
 * Reads a multipart/form-data body and writes the content of the file part named `field` through
 * `write` (awaited: the disk paces the reading). Stops reading once that part is complete.
 * `onBytes(total)` runs before each write and throws an UploadError to refuse (limit, quota).
 */
export async function streamFilePart(
  body: ReadableStream<Uint8Array> | null,
  contentType: string,
  field: string,
  write: (chunk: Uint8Array) => Promise<unknown>,
  onBytes: (total: number) => void,
): Promise<FilePart> {
  const boundary = boundaryOf(contentType);
  if (!boundary || !body) throw new UploadError(400, "invalid_body", "multipart/form-data with a `file` field expected");
  // every delimiter, the first included once the body is prefixed with CRLF, is CRLF--boundary
  const delim = Buffer.from(`\r\n--${boundary}`);
  const reader = body.getReader();
  let buf: Buffer = Buffer.from("\r\n");
  let state: "preamble" | "after" | "headers" | "content" = "preamble";
  let current: { target: boolean; filename: string; type: string | null } | null = null;
  let size = 0;
  let skipped = 0;
  const bad = (why: string) => new UploadError(400, "invalid_body", `multipart/form-data with a \`file\` field expected (${why})`);

  const emit = async (chunk: Buffer) => {
    if (!chunk.length || !current) return;
    if (!current.target) {
      skipped += chunk.length;
      if (skipped > OTHER_PART_MAX) throw bad("a field other than the file is too large");
      return;
    }
    size += chunk.length;
    onBytes(size);
    await write(chunk);
  };

  try {
    for (;;) {
      // run the state machine as far as the buffered bytes allow
      for (;;) {
        if (state === "preamble" || state === "content") {
          const i = buf.indexOf(delim);
          if (i < 0) {
            // keep what could be the start of a delimiter
            const keep = Math.min(buf.length, delim.length - 1);
            if (state === "content") await emit(buf.subarray(0, buf.length - keep));
            buf = buf.subarray(buf.length - keep);
            break;
          }
          if (state === "content") {
            await emit(buf.subarray(0, i));
            if (current?.target) return { name: current.filename, type: current.type, size };
          }
          buf = buf.subarray(i + delim.length);
          state = "after";
        }
        if (state === "after") {
          if (buf.length < 2) break;
          const two = buf.subarray(0, 2).toString("latin1");
          if (two === "--") throw bad(`no part named "${field}"`);
          if (two !== "\r\n") throw bad("malformed delimiter");
          buf = buf.subarray(2);
          state = "headers";
        }
        if (state === "headers") {
          const end = buf.indexOf(CRLF2);
          if (end < 0) {
            if (buf.length > HEADER_MAX) throw bad("part headers too large");
            break;
          }
          const h = partHeaders(buf.subarray(0, end).toString("utf8"));
          buf = buf.subarray(end + 4);
          current = { target: h.name === field && h.filename !== null, filename: h.filename ?? "", type: h.type };
          skipped = 0;
          state = "content";
        }
      }
      const { done, value } = await reader.read();
      if (done) throw bad("the body ended before the file part did");
      buf = buf.length ? Buffer.concat([buf, value]) : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
  } finally {
    // the rest of the body is read and dropped, not cancelled: a proxy still sending it (Caddy) would
    // otherwise answer 502 for the app's 413 or 429. Memory stays at one chunk; Caddy bounds the size.
    await discardRest(reader);
  }
}

async function discardRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  try {
    for (;;) if ((await reader.read()).done) return;
  } catch {
    /* the client went away: nothing left to read */
  }
}

/** Reads and drops a body the app refuses before looking at it (see discardRest). */
export async function discardBody(body: ReadableStream<Uint8Array> | null): Promise<void> {
  if (!body || body.locked) return;
  await discardRest(body.getReader());
}

/**
 * Admission of uploads: at most `total` at once on this instance and `perUser` for one user (the
 * request is refused with 429 rather than queued: a queue is memory too). `release` must be called.
 */
export function uploadSlots(total: number, perUser: number) {
  let inFlight = 0;
  const byUser = new Map<number, number>();
  return {
    acquire(userId: number): () => void {
      const mine = byUser.get(userId) ?? 0;
      if (inFlight >= total) throw new UploadError(429, "too_many_uploads", `${total} uploads are in progress; retry shortly`);
      if (mine >= perUser) throw new UploadError(429, "too_many_uploads", `at most ${perUser} uploads at once per user`);
      inFlight++;
      byUser.set(userId, mine + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        inFlight--;
        const n = (byUser.get(userId) ?? 1) - 1;
        if (n <= 0) byUser.delete(userId);
        else byUser.set(userId, n);
      };
    },
    get inFlight() {
      return inFlight;
    },
  };
}
