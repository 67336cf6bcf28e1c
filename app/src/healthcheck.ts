// Not the image's probe any more (the HEALTHCHECK is one bash /dev/tcp request to the same path, a
// third of the CPU): kept as the baseline bench/healthcheck measures, and for images without bash.
// Docker HEALTHCHECK (the image has no curl): exit 0 iff GET http://127.0.0.1:$PORT/health/write
// answers 200, i.e. the app serves and its database takes a write (at most one write per second,
// however often this runs; /health itself only reads).
const port = process.env.PORT || "3000";
try {
  const res = await fetch(`http://127.0.0.1:${port}/health/write`, { signal: AbortSignal.timeout(1500) });
  if (res.status !== 200) console.error(`health: HTTP ${res.status} ${await res.text()}`);
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  console.error(`health: ${(err as Error).message}`);
  process.exit(1);
}

export {};
