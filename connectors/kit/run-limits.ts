/**
 * The limits of one sync run (a source's `limits` in hub.config.yaml). The hub sets them around a run's reads; the
 * kit's HTTP client and page walker read them here, so that every connector is bounded without passing them
 * through its own code.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export interface RunLimits {
  /** One HTTP attempt, from sending the request to the last byte of the answer. */
  requestTimeoutMs?: number;
  /** Retries after the first attempt of one request. */
  maxRetries?: number;
  /** The largest answer read; a larger one fails the run (it would be held in memory whole). */
  maxResponseBytes?: number;
  /** Aborted when the run must stop (its time limit, a shutdown): requests in flight and waits between retries end. */
  signal?: AbortSignal;
}

/** What the hub uses where a source sets no limit; the HTTP client's own defaults apply to the request limits. */
export const DEFAULT_MAX_PAGES_PER_RUN = 100_000;
export const DEFAULT_MAX_RUN_MS = 6 * 3_600_000;

const current = new AsyncLocalStorage<RunLimits>();

/** Runs `work` (and every request it makes, however deep) under `limits`. */
export function withRunLimits<T>(limits: RunLimits, work: () => T): T {
  return current.run(limits, work);
}

/** The limits of the run this code executes in; empty outside a run (a `check`, a test). */
export function runLimits(): RunLimits {
  return current.getStore() ?? {};
}
