/**
 * The hub's API as the workspace uses it: the same routes machines call with keys, authenticated here by the
 * `hub_session` cookie. The CSRF token lives in memory only and goes with every write (`X-CSRF-Token`).
 */

export interface Session {
  user: { username: string; role: string };
  scopes: string[];
  csrf_token: string;
}

export interface ReviewItem {
  id: string;
  kind: 'pair' | 'conflict';
  status: string;
  created_at: string;
  impact: number;
  summary: string;
  golden_ids: string[];
}

export interface SideRecord {
  raw_record_id: number | string;
  source: string;
  stream: string;
  external_id: string;
  golden_id: string | null;
  observed_at: string;
  data: Record<string, unknown>;
}

export interface AttributeWeight {
  attribute: string;
  level: number | string;
  label?: string;
  weight: number;
  left?: unknown;
  right?: unknown;
}

export interface Explanation {
  prior_weight: number;
  total_weight: number;
  probability: number;
  attributes: AttributeWeight[];
}

export interface PairDetail extends ReviewItem {
  kind: 'pair';
  probability: number;
  match_weight: number;
  reason: string;
  records: [SideRecord, SideRecord];
  /** Null when the matcher has no model to explain the pair with. */
  explanation: Explanation | null;
}

export interface ConflictCandidate {
  value: unknown;
  source: string;
  raw_record_id: number | string | null;
  observed_at: string;
  survived: boolean;
}

export interface ConflictDetail extends ReviewItem {
  kind: 'conflict';
  golden_id: string;
  attribute: string;
  candidates: ConflictCandidate[];
}

export interface Decision {
  id: string;
  kind: string;
  actor: string;
  reason: string | null;
  created_at: string;
  review_item_id: string | null;
  golden_ids: string[];
  raw_record_ids: (number | string)[];
  attribute: string | null;
  value: unknown;
  undone_at: string | null;
  undone_by: string | null;
}

export interface DecisionResult {
  decision: Decision;
  customers: string[];
}

export interface LineageEntry {
  value: unknown;
  source: string;
  raw_record_id: number | string;
  observed_at: string;
}

export interface Customer {
  id: string;
  status: string;
  attributes: Record<string, unknown>;
  lineage: Record<string, LineageEntry[]>;
  alternates: Record<string, LineageEntry[]>;
  source_records: {
    raw_record_id: number | string;
    source: string;
    stream: string;
    external_id: string;
    since: string;
    cause: string;
    detail: Record<string, unknown>;
    /** Values the record's mapping left out (`on_error: omit`), and why. */
    omitted_values: { field: string; target: string; reason: string }[];
  }[];
  value?: {
    segment: string;
    revenue: Record<string, number>;
    rfm: { recency_days: number | null; frequency: number; frequency_365_days: number };
    open_quotes: { count: number };
    open_tickets: { count: number; oldest_age_days: number | null };
    emails_awaiting_reply: { count: number };
    last_contact: { at: string; kind: string; source: string } | null;
    owner: string | null;
  };
  created_at: string;
  updated_at: string;
}

export interface CustomerSummary {
  id: string;
  attributes: Record<string, unknown>;
  updated_at: string;
  score?: number;
}

export interface TimelineItem {
  kind: string;
  occurred_at: string;
  status?: string;
  amount?: number;
  currency?: string;
  summary?: string;
  source_record: { id: number | string; source: string };
}

export interface Overview {
  totals: { golden_records: number; source_records: Record<string, number>; review_open: number; review_oldest_days: number | null; quarantine_rate: number };
  series: ({ day: string } & Record<string, number | string>)[];
}

export interface Run {
  id: number | string;
  status: string;
  trigger: string;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  read: number;
  created: number;
  updated: number;
  unchanged: number;
  quarantined: number;
  /** Records the run stored with values an `on_error: omit` rule left out. */
  with_omitted_values: number;
  error: string | null;
}

export interface Source {
  name: string;
  connector: string;
  schedule: string | null;
  next_run_at?: string | null;
  last_run: Run | null;
  records: number;
  quarantined: number;
  /** Records that loaded without values their mapping omits (`on_error: omit`). */
  records_with_omitted_values: number;
}

export interface QuarantineEntry {
  id: number | string;
  source: string;
  stream: string;
  external_id: string | null;
  field: string | null;
  reason: string;
  stage: string;
  created_at: string;
  resolved_at: string | null;
}

/** A page of the steward routes (review queue, decisions). */
export interface Page<T> {
  items: T[];
  next_cursor?: string | null;
}

/** A list of the older routes (customers, timeline, sources, runs, quarantine), which call it `data`. */
export interface List<T> {
  data: T[];
  next_cursor?: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
/** Called when the API says the session is gone, so the shell shows the sign-in page. */
let onSignedOut: () => void = () => undefined;

export function setSignedOutHandler(handler: () => void): void {
  onSignedOut = handler;
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 204) return undefined as T;
  const payload = await response.json().catch(() => null);
  if (!response.ok) {
    const error = payload?.error ?? {};
    // A failed sign-in is an answer for the form, not a lost session.
    if (response.status === 401 && path !== '/v1/session') {
      csrfToken = null;
      onSignedOut();
    }
    throw new ApiError(response.status, error.code ?? `HTTP_${response.status}`, error.message ?? `${method} ${path} failed with HTTP ${response.status}.`);
  }
  return payload as T;
}

const get = <T>(path: string) => request<T>('GET', path);
const post = <T>(path: string, body: unknown = {}) => request<T>('POST', path, body);
const remember = (session: Session): Session => {
  csrfToken = session.csrf_token;
  return session;
};
const path = encodeURIComponent;

export const api = {
  signIn: async (username: string, password: string) => remember(await post<Session>('/v1/session', { username, password })),
  restoreSession: async () => remember(await get<Session>('/v1/session')),
  signOut: async () => {
    await request<void>('DELETE', '/v1/session');
    csrfToken = null;
  },

  reviewQueue: (params: { kind?: string; status?: string; limit?: number; cursor?: string }) => get<Page<ReviewItem>>(`/v1/review${query(params)}`),
  reviewItem: (id: string) => get<PairDetail | ConflictDetail>(`/v1/review/${path(id)}`),
  decide: (id: string, body: { action: string; value?: unknown; reason?: string }) => post<DecisionResult>(`/v1/review/${path(id)}/decision`, body),

  decisions: (params: Record<string, string | undefined>) => get<Page<Decision>>(`/v1/decisions${query(params)}`),
  decisionsCsvUrl: (params: Record<string, string | undefined>) => `/v1/decisions${query({ ...params, format: 'csv' })}`,
  undo: (id: string, reason?: string) => post<DecisionResult>(`/v1/decisions/${path(id)}/undo`, reason ? { reason } : {}),

  customer: (id: string) => get<Customer>(`/v1/customers/${path(id)}`),
  timeline: (id: string) => get<List<TimelineItem>>(`/v1/customers/${path(id)}/timeline`),
  searchCustomers: (params: { name?: string; email?: string; limit?: number }) => get<List<CustomerSummary>>(`/v1/customers${query(params)}`),
  split: (id: string, rawRecordIds: number[], reason?: string) => post<DecisionResult>(`/v1/customers/${path(id)}/split`, { raw_record_ids: rawRecordIds, reason }),
  mergeCustomers: (ids: [string, string], reason?: string) => post<DecisionResult>('/v1/customers/merge', { ids, reason }),
  pin: (id: string, attribute: string, value: unknown, reason?: string) =>
    request<DecisionResult>('PUT', `/v1/customers/${path(id)}/pins/${path(attribute)}`, { value, reason }),
  unpin: (id: string, attribute: string) => request<DecisionResult>('DELETE', `/v1/customers/${path(id)}/pins/${path(attribute)}`),

  overview: () => get<Overview>('/v1/overview'),

  sources: () => get<List<Source>>('/v1/sources'),
  sourceRuns: (name: string, limit = 5) => get<List<Run>>(`/v1/sources/${path(name)}/runs${query({ limit })}`),
  syncNow: (name: string) => post<{ run_id?: number | string; queued?: boolean }>(`/v1/sources/${path(name)}/sync`),
  quarantine: (params: { source?: string; open?: string; limit?: number }) => get<List<QuarantineEntry>>(`/v1/quarantine${query(params)}`),
  requeue: (id: number | string) => post<{ status: 'accepted' | 'still_quarantined'; reason?: string }>(`/v1/quarantine/${path(String(id))}/requeue`),
};
