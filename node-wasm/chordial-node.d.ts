// Types of the wasm node's JavaScript API (see docs/api.md). Hand-written: the generated
// chordial_node_wasm.d.ts has the same names with `any` where values cross as plain objects.

export default function init(input?: { module_or_path?: RequestInfo | URL | Response | BufferSource | WebAssembly.Module }): Promise<unknown>;

export interface OpenOptions {
  /** Network id, 1–64 characters of [A-Za-z0-9-._~]. */
  network: string;
  /** Base URLs of chordial-servers; the node POSTs offers to `${url}/v1/signal`. Stored when given. */
  bootstrap?: string[];
  /** Passed to every RTCPeerConnection; default []. Stored when given. */
  iceServers?: RTCIceServer[];
  /** IndexedDB database name; default "chordial". */
  database?: string;
}

export type ErrorCode =
  | 'INVALID_ARGUMENT' | 'UNSUPPORTED' | 'STORAGE' | 'NO_PENDING_REQUEST' | 'BAD_SIGNATURE'
  | 'NO_DELEGATION' | 'ALREADY_RUNNING' | 'NOT_RUNNING' | 'STOPPED' | 'CLOSED' | 'BUSY'
  | 'TOO_LARGE' | 'NOT_FOUND' | 'NODE_NOT_FOUND' | 'MAILBOX_FULL' | 'MAILBOX_QUOTA' | 'TIMEOUT' | 'NO_ROUTE' | 'HOP_LIMIT'
  | 'NOT_CONNECTED'
  | 'REFUSED' | 'RECORD_REFUSED' | 'BOOTSTRAP_FAILED' | 'WEBRTC'
  | 'BAD_CODE' | 'CODE_EXPIRED' | 'CODE_USED' | 'NO_MATCHING_OFFER';

/** Every rejection: `error.name === 'ChordialError'`. */
export interface ChordialError extends Error {
  name: 'ChordialError';
  code: ErrorCode;
  /** The EIP-1193 / JSON-RPC code a page gets for this error (node-wasm/src/error.rs, docs/dapp-api.md). */
  rpcCode: 4100 | 4900 | -32602 | -32000 | -32603;
  message: string;
}

export interface SendResult { id: string; result: 'delivered' | 'stored' }
export interface SessionInfo { nodeId: string; session: string; expires: number }
export interface LookupResult { wallet: string; sessions: SessionInfo[] }
export interface Member { wallet: string; announcedAt: number }

export type RunState = 'idle' | 'running' | 'stopping' | 'closed';

export interface LinkStatus {
  link: number;
  peer: string | null;
  open: boolean;
  roles: string[];
  rttMs: number | null;
  bytesIn: number;
  bytesOut: number;
  bufferedAmount: number;
  queued: number;
}

export interface Counters {
  linkCreations: number; directLinks: number; framesIn: number; framesOut: number; bytesIn: number; bytesOut: number;
  forwarded: number; rerouted: number; droppedInvalid: number; droppedReplay: number;
  refusedIdentity: number; refusedLinks: number; refusedRecords: number; refusedMessages: number;
  messagesReceived: number; records: number; undeliverable: number; routeCacheHits: number;
  sessionHellos: number; sessionMessages: number; sessionReceipts: number; sessionsLost: number;
  peerConnectionsCreated: number; peerConnectionsOpen: number;
  framesDroppedBackpressure: number; framesDroppedOversize: number;
}

export interface NodeStatus {
  network: string;
  state: RunState;
  wallet: string | null;
  sessionKey: string;
  nodeId: string;
  sessionExpires: number | null;
  bootstrap: {
    state: 'idle' | 'connecting' | 'joined' | 'failed';
    servers: { url: string; nodeId: string | null }[];
    lastError: string | null;
  };
  joined: boolean;
  successors: string[];
  predecessor: string | null;
  fingers: { index: number; nodeId: string }[];
  links: LinkStatus[];
  counters: Counters;
}

/** A pairing code to carry to the other browser, usable until `expires` (Unix ms). */
export interface PairCode { code: string; expires: number }

export type NodeEvent =
  | { type: 'message'; from: string; appOrigin: string; data: Uint8Array; id: string; sentAt: number; hops: number }
  | { type: 'membership'; joined: boolean }
  | { type: 'bootstrap'; state: 'connecting' | 'joined' | 'failed'; url: string | null; error: string | null }
  | { type: 'link'; link: number; state: 'opening' | 'open' | 'closed'; peer: string | null }
  | { type: 'state'; state: RunState }
  | { type: 'error'; code: ErrorCode; message: string };

export class ChordialNode {
  private constructor();
  static open(options: OpenOptions): Promise<ChordialNode>;
  delegationRequest(req: { domain: string; address: string; chainId: number }): Promise<string>;
  completeDelegation(signature: string): Promise<{ wallet: string; expires: number }>;
  setSettings(settings: { bootstrap?: string[]; iceServers?: RTCIceServer[] }): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
  send(appOrigin: string, toWallet: string, bytes: Uint8Array): Promise<SendResult>;
  lookup(wallet: string): Promise<LookupResult>;
  announce(appOrigin: string, topic: string, ttlSeconds?: number): Promise<void>;
  withdraw(appOrigin: string, topic: string): Promise<void>;
  discover(appOrigin: string, topic: string): Promise<Member[]>;
  status(): NodeStatus;
  onEvent(callback: (event: NodeEvent) => void): number;
  offEvent(token: number): void;
  /** Answers a bootstrap offer (a /v1/signal body) with this node; resolves with the answer body. */
  handleSignal(body: Uint8Array): Promise<Uint8Array>;
  /** Pairing without a server, step 1: an offer code (`chordial-offer:…`) for the other browser. */
  pairOffer(): Promise<PairCode>;
  /** Step 2, on the other browser: takes the offer code, returns the answer code (`chordial-answer:…`). */
  pairAnswer(offerCode: string): Promise<PairCode>;
  /** Step 3, back on the first browser: takes the answer code; resolves once the link is open. */
  pairComplete(answerCode: string): Promise<{ link: number; peer: string | null }>;
  close(): void;
  forget(): Promise<void>;
  free(): void;
}
