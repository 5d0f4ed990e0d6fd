// Types of cloudbase-auth (index.js, and cloudbase-auth.min.js for Mini Programs).
// ES2017 only: no DOM, Node or WebAssembly types needed.

/** What `user.update()` changes: the fields given (at least one). */
export interface ProfileChange {
  /** New nickname: 1–64 bytes of UTF-8, not all whitespace, no control characters. */
  nickName?: string;
  /** New avatar URL: `http(s)://` and a host, at most 256 bytes, no spaces or quotes. */
  avatarUrl?: string;
}

/** The signed-in user (`auth.currentUser`, `getUserInfo().user`, `LoginState.user`). */
export interface User {
  /** CloudBase user id. */
  uid: string;
  /** Nickname ('' until known). */
  nickName: string;
  /** Avatar URL ('' until known). */
  avatarUrl: string;
  /** WeChat openid, when a WeChat identity is known. */
  openid?: string;
  /** E-mail, when known. */
  email?: string;
  /**
   * Changes the nickname and/or avatar on the server (refreshing the session first when
   * due). Resolves once the server took it; the cached user and the stored session then
   * hold what the server answered, and `onLoginStateChanged` listeners hear the new
   * state. A refusal (a rejected `AuthError`) changes nothing.
   */
  update(change: ProfileChange): Promise<void>;
}

/** A signed-in session (`getLoginState()` gives `null` when there is none). */
export interface LoginState {
  loginType: 'ANONYMOUS' | 'WECHAT';
  isAnonymousAuth: boolean;
  user: User;
  credential: {
    /** For your own calls to CloudBase services. */
    accessToken: string;
    /** The `Authorization` scheme (`Bearer`). */
    tokenType: string;
    /** When the access token expires (Unix ms); it is refreshed before that. */
    accessTokenExpire: number;
  };
  /**
   * Set (only on the state passed to `onLoginStateChanged` listeners) when this is a
   * **new** anonymous user that replaced one the server refused (its refresh token was
   * revoked or reused elsewhere): a different `uid`, not the same session continued.
   * Calls that were waiting on the refused session rejected with `SESSION_EXPIRED`.
   */
  replaced?: true;
}

/** The `wx.cloud.auth()` object. */
export interface Auth {
  /**
   * The current session, refreshed first when due; `null` when not signed in. The state
   * is frozen, and calls made while the session is unchanged get the same object.
   */
  getLoginState(): Promise<LoginState | null>;
  /** Signs in as an anonymous user (reuses a current anonymous session). */
  signInAnonymously(): Promise<LoginState>;
  /** Calls `wx.login` (or `init({ login })`), then signs in with the WeChat identity. */
  signInWithWeChat(): Promise<LoginState>;
  /** Links WeChat to the current anonymous user (same uid). */
  linkWithWeChat(): Promise<LoginState>;
  /** Fetches the user's profile. */
  getUserInfo(): Promise<{ user: User }>;
  /**
   * Signs out: the local session is gone at once; `revoked` says whether the server
   * confirmed (false offline).
   */
  signOut(): Promise<{ revoked: boolean }>;
  /**
   * Deletes the signed-in user on the server (its identities and its sessions on every
   * device), then ends the local session as `signOut` does: listeners hear `null`. A
   * refusal keeps the session.
   */
  deleteMe(): Promise<void>;
  /** The signed-in user, read from the client at each access; `null` when signed out. */
  readonly currentUser: User | null;
  /** Calls `cb` with the current state, then on every change; returns an unsubscribe. */
  onLoginStateChanged(cb: (state: LoginState | null) => void): () => void;
}

/** Key/value storage (Node and browsers); `localStorage` or memory by default. */
export interface KeyValueStorage {
  getItem(key: string): string | null | undefined;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface InitOptions {
  /** CloudBase env id. */
  env: string;
  /** Mini Program appId (default: `wx.getAccountInfoSync().miniProgram.appId`). */
  appid?: string;
  /** `client_id` (default: the env id). */
  clientId?: string;
  /**
   * Server origin, e.g. `http://127.0.0.1:8080` (default:
   * `https://{env}.ap-shanghai.tcb-api.tencentcloudapi.com`).
   */
  baseUrl?: string;
  /**
   * The module: a package path in Mini Programs (default
   * `/cloudbase-auth/cloudbase_auth.wasm`), a file path in Node (default: next to
   * index.js), a URL in browsers, or its bytes.
   */
  wasm?: string | ArrayBuffer | ArrayBufferView;
  /** Node and browsers: where the session is kept. */
  storage?: KeyValueStorage;
  /** Node and browsers: a `wx.login` stand-in that resolves to a login code. */
  login?: () => Promise<string>;
}

/** Every rejection and throw of this package. */
export class AuthError extends Error {
  /**
   * `NOT_INITIALIZED`, `INVALID_ARGUMENT`, `NOT_SIGNED_IN`, `SESSION_EXPIRED`,
   * `SERVER_ERROR`, `NETWORK_ERROR`, `BAD_REPLY`, `CANCELLED`, `BUSY`, `NOT_ANONYMOUS`,
   * `INPUT_TOO_LONG`, `NO_WX_LOGIN`, `WX_LOGIN_FAILED`, `CLOSED`, ...
   */
  code: string;
  /** HTTP status (server errors). */
  status?: number;
  /** The server's `error_code` (server errors). */
  errorCode?: number;
  /** Which input was refused. */
  field?: string;
  /** The server's `error` name (server errors; `''` when it gave none). */
  error?: string;
  /**
   * The server's `error_description` (server errors; `''` when it gave none); `message`
   * is this text when there is one.
   */
  errorDescription?: string;
}

/** `wx.cloud.init({ env })`: starts a client (a later call replaces it). */
export function init(options: InitOptions): void;
/** The auth object of the current client; throws `NOT_INITIALIZED` before `init`. */
export function auth(): Auth;
/**
 * Mini Programs: adds `auth()` and an `init()` that also starts this client to the
 * Mini Program's own `wx.cloud` (its other members stay); `defaults` apply to every init.
 */
export function install(defaults?: Partial<InitOptions>): unknown;

declare global {
  /** `wx.cloud` after `install()` (miniprogram-api-typings' WxCloud, augmented). */
  interface WxCloud {
    auth(): Auth;
  }
}
