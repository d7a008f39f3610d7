/**
 * The connector contract. A connector is the code for one kind of system; a source is one
 * configured instance of it. A connector never touches the database: it yields pages of records,
 * each with the checkpoint that covers it, and the hub stores both in one transaction.
 */
import type { Logger } from '../../hub/log.js';

/** A record as the source system gave it. `data` is kept as received. */
export interface SourceRecord {
  /** The record's primary key in its stream, as a string. */
  externalId: string;
  data: Record<string, unknown>;
  /** Where the record came from in a file (1-based line), for error messages. */
  line?: number;
}

/** Input that could not be read as a record. It goes to quarantine; the stream goes on. */
export interface RejectedRecord {
  externalId?: string;
  line?: number;
  /** The field at fault, when one is. */
  field?: string;
  reason: string;
  /** What was received, as it was received (a JSON value or the raw text). */
  payload: unknown;
}

/** Where a page stands in a full sweep (RecordPage.sweep). */
export interface SweepMarks {
  start?: boolean;
  end?: boolean;
}

/** The marks of a sweep's page: only those that hold, so a page in the middle of a sweep carries none. */
export function sweepMarks(start: boolean, end: boolean): SweepMarks {
  return { ...(start ? { start: true } : {}), ...(end ? { end: true } : {}) };
}

/** One page of a stream. `state` is the checkpoint to save with it: after a crash, reading resumes there. */
export interface RecordPage {
  records: SourceRecord[];
  rejected?: RejectedRecord[];
  state: StreamState;
  /** Optional progress of the whole stream, for progress bars and run status. */
  progress?: { done: number; total?: number };
  /**
   * For streams read by full sweeps (a file, a list without a change filter): `start` on the first page of a
   * sweep, `end` on its last. When a sweep ends, the hub marks the records it did not see as deleted — only
   * then, so a failed or partial run never deletes anything. A sweep may span runs (resumed from a checkpoint).
   */
  sweep?: SweepMarks;
  /**
   * External ids the source still holds, listed without their content by a sweep that reads ids only (a source whose
   * deletions are invisible to its incremental reads): the hub counts them as seen, so that the end of the sweep
   * does not take them for deleted. An id the hub holds no record of is ignored.
   */
  present?: string[];
  /**
   * External ids the source reports deleted (a tombstone in its export, e.g. a Zendesk user that is no longer active):
   * the hub marks its records of them deleted, kept as received, and they leave their golden records. An id the hub
   * holds no record of is ignored; a record deleted so comes back when it is read again.
   */
  deleted?: string[];
}

export type StreamState = Record<string, unknown>;

export interface StreamDefinition {
  name: string;
  /** JSON Schema of one record's `data`. */
  recordSchema: Record<string, unknown>;
  /** Field(s) of `data` that identify a record. */
  primaryKey: string[];
  /** Field that orders increments, if the stream has one. */
  cursorField?: string;
}

export interface ConnectorContext {
  /** The source's name, for messages. */
  source: string;
  log: Logger;
  /** Aborted when the hub shuts down; long reads should stop at the next page. */
  signal?: AbortSignal;
  /** Directory that relative paths in the configuration are resolved against. */
  baseDir: string;
}

export interface CheckResult {
  ok: boolean;
  message: string;
}

/** What every connector declares: its configuration, its streams and its default mapping. */
interface ConnectorBase<Config> {
  name: string;
  /** The JSON Schema of a source's `config` (config.schema.json). */
  configSchema: Record<string, unknown>;
  /** Path of the default mapping document shipped in the connector's folder. */
  defaultMappingPath: string;
  streams(config: Config): StreamDefinition[];
}

/**
 * A connector the hub pulls from: `read` yields pages with their checkpoints. What one connector module
 * exports as `connector`; `Config` is the type generated from the connector's `config.schema.json`.
 */
export interface PulledConnector<Config = unknown> extends ConnectorBase<Config> {
  kind: 'pulled';
  check(config: Config, ctx: ConnectorContext): Promise<CheckResult>;
  read(stream: string, state: StreamState | undefined, config: Config, ctx: ConnectorContext): AsyncIterable<RecordPage>;
}

/**
 * A connector whose records arrive by HTTP (event ingestion, webhooks) or originate in the hub itself.
 * The hub stores each delivery with `acceptRecords` (hub/push.ts): the same raw → mapped → resolved path.
 */
export interface PushedConnector<Config = unknown> extends ConnectorBase<Config> {
  kind: 'pushed';
}

export type Connector<Config = unknown> = PulledConnector<Config> | PushedConnector<Config>;

/** Failure kinds, as the hub treats them: config fails the run and tells the user, transient is retried, system is our bug. */
export type FailureKind = 'config' | 'transient' | 'system';

export class ConnectorError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ConnectorError';
  }
}
