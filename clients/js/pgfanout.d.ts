// TypeScript declarations of pgfanout.js, the client of pgfanout's hub (docs/protocol.md).

/** An event id: an outbox id (durable rules) or a WAL position such as "0/16B3748". Opaque. */
export type EventId = number | string;

/** A pushed event, or a row of the topic's `on_subscribe` statement (those have no id). */
export interface HubEvent<T = unknown> {
  type: 'event';
  topic: string;
  event: string;
  data: T;
  id?: EventId;
}

/**
 * Why a topic must be reloaded: `server` (the hub said `resync`: its listener reconnected, or it
 * could not fill the gap), `reconnected` (the connection dropped and the topic has no id to resume
 * from: a topic of non-durable rules), `resume_failed` (the catch-up SSE stream was refused or
 * could not be read: e.g. a page on another origin, the hub sending no CORS headers).
 */
export type ResyncReason = 'server' | 'reconnected' | 'resume_failed';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** A token, or a callback asked before every connection (e.g. to refresh it). null: anonymous. */
export type TokenSource = string | null | (() => string | null | undefined | Promise<string | null | undefined>);

export interface BackoffOptions {
  /** First delay in ms (default 500); each delay is drawn from [d/2, d]. */
  initial?: number;
  /** Largest delay in ms (default 15000). */
  max?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
}

export interface ClientOptions {
  /** The daemon's base URL (http(s):// or ws(s)://); default: the page's origin. */
  url?: string;
  token?: TokenSource;
  /** 'auto' (default: WebSocket, SSE when WebSockets cannot get through), 'websocket', 'sse'. */
  transport?: 'auto' | 'websocket' | 'sse';
  /** Default '/ws'. */
  wsPath?: string;
  /** Default '/events'. */
  ssePath?: string;
  backoff?: BackoffOptions;
  /** How long call, publish and login wait for a connection and a reply (ms, default 15000). */
  requestTimeout?: number;
  /** Ids remembered per topic to drop duplicates (default 2000). */
  dedupeWindow?: number;
  /** A WebSocket implementation where there is no global one (Node 18: the `ws` package). */
  WebSocket?: unknown;
  /** An EventSource implementation to use for SSE instead of fetch (token in the query string). */
  EventSource?: unknown;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** false: do not connect until open(). */
  autoConnect?: boolean;
}

export interface SubscriptionHandlers<T = unknown> {
  /** Every event of the topic. */
  onEvent?(event: HubEvent<T>): void;
  /** Events by name: `on: { message(data, event) { ... } }`. */
  on?: Record<string, (data: T, event: HubEvent<T>) => void>;
  /** Events of the topic may have been missed: reload its state. */
  onResync?(topic: string, reason: ResyncReason): void;
  /** Each time the subscription is acknowledged (first and after every reconnect). */
  onSubscribed?(topic: string): void;
  /** The subscription failed (`forbidden`, `unauthorized`, ... end it) or lost its backlog. */
  onError?(error: PgFanoutError): void;
}

export interface SubscribeOptions {
  /** The id of the last event the application has: resume after it. */
  after?: EventId;
}

export interface LoginResult {
  token: string;
  expires_in: number;
  claims: Record<string, unknown> & { sub: string };
}

export class PgFanoutError extends Error {
  /** The protocol's error code (forbidden, command_failed, ...), or connection_lost, timeout, closed, unsupported. */
  code: string;
  status?: number;
  constructor(code: string, message?: string, extra?: object);
}

export class Subscription<T = unknown> {
  readonly topic: string;
  readonly active: boolean;
  /** The id of the last event delivered, if any. */
  readonly lastEventId: EventId | undefined;
  /** Resolves once the subscription is acknowledged on the current connection. */
  ready(): Promise<void>;
  unsubscribe(): void;
}

export class PgFanout {
  constructor(options?: ClientOptions | string);
  readonly state: ConnectionState;
  on(name: 'state', listener: (state: ConnectionState, info: { delay?: number; attempt?: number; error?: PgFanoutError; transport?: string }) => void): () => void;
  on(name: 'open', listener: () => void): () => void;
  on(name: 'close', listener: (error: PgFanoutError) => void): () => void;
  on(name: 'resync', listener: (topic: string, reason: ResyncReason) => void): () => void;
  on(name: 'error' | 'unauthorized', listener: (error: PgFanoutError) => void): () => void;
  on(name: 'fallback', listener: (transport: 'sse') => void): () => void;
  open(): this;
  close(): void;
  reconnect(): void;
  setToken(token: TokenSource, options?: { reconnect?: boolean }): void;
  ready(): Promise<void>;
  subscribe<T = unknown>(topic: string, handlers: SubscriptionHandlers<T> | ((event: HubEvent<T>) => void), options?: SubscribeOptions): Subscription<T>;
  subscription(topic: string): Subscription | undefined;
  call<Row = Record<string, unknown>>(command: string, args?: Record<string, unknown>): Promise<Row[]>;
  publish(topic: string, data: unknown): Promise<void>;
  login(username: string, password: string): Promise<LoginResult>;
  ping(): Promise<void>;
}

export function connect(options?: ClientOptions | string): PgFanout;
export const VERSION: string;
export default connect;
