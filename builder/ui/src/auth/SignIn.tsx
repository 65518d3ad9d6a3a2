/**
 * The sign-in screen: an email and a password (or, for programs' keys, "Use an API key instead"),
 * exchanged once for an HttpOnly session cookie. Nothing the browser can read keeps a secret.
 */
import { type FormEvent, useState } from "react";
import { api, errorMessage } from "../api/client";
import { T } from "../testids";
import { useSession } from "./session";

type Body = { email: string; password: string } | { api_key: string };

export function SignIn() {
  const signedIn = useSession((s) => s.signedIn);
  const [withKey, setWithKey] = useState(false);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [key, setKey] = useState("");
  // The server sends a spent or unknown one-click link back here with ?signin=expired.
  const [error, setError] = useState(() => new URLSearchParams(window.location.search).get("signin") === "expired"
    ? "This sign-in link was already used or has expired: sign in, or ask for a new link." : "");
  const [busy, setBusy] = useState(false);

  async function send(body: Body) {
    setBusy(true);
    setError("");
    try {
      const { data, error: failure, response } = await api.POST("/v1/session", { body });
      if (data) signedIn(data);
      else {
        const wait = response.headers.get("Retry-After");
        setError(errorMessage(failure, "Signing in failed.") + (wait ? ` (wait ${wait} s)` : ""));
      }
    } catch (e) {
      setError(errorMessage(e, "The server could not be reached."));
    } finally {
      setBusy(false);
    }
  }

  function submit(event: FormEvent) {
    event.preventDefault();
    void send(withKey ? { api_key: key.trim() } : { email: email.trim(), password });
  }

  const ready = withKey ? Boolean(key.trim()) : Boolean(email.trim() && password);
  return (
    <main className="sign-in">
      <h1>Mantle builder</h1>
      <form onSubmit={submit} data-testid={T.signInForm} aria-labelledby="sign-in-title">
        <h2 id="sign-in-title">Sign in</h2>
        {withKey ? (
          <>
            <p>Use an API key of your organization (it starts with <code>mk_</code>). It is checked once;
              the browser keeps only a session cookie.</p>
            <label htmlFor="api-key">API key</label>
            <input id="api-key" type="password" autoComplete="off" required value={key}
              onChange={(e) => setKey(e.target.value)} aria-describedby={error ? "sign-in-error" : undefined} />
          </>
        ) : (
          <>
            <label htmlFor="sign-in-email">Email</label>
            <input id="sign-in-email" type="email" autoComplete="username" required value={email}
              onChange={(e) => setEmail(e.target.value)} aria-describedby={error ? "sign-in-error" : undefined} />
            <label htmlFor="sign-in-password">Password</label>
            <input id="sign-in-password" type="password" autoComplete="current-password" required value={password}
              onChange={(e) => setPassword(e.target.value)} />
          </>
        )}
        {error && <p id="sign-in-error" role="alert" className="error">{error}</p>}
        <button type="submit" className="primary" disabled={busy || !ready}>Sign in</button>
      </form>
      <button type="button" className="link" data-testid={T.signInMode}
        onClick={() => { setWithKey(!withKey); setError(""); }}>
        {withKey ? "Use your email and password instead" : "Use an API key instead"}
      </button>
      {!withKey && <p className="muted">New here? Open the invitation link an admin gave you.</p>}
    </main>
  );
}
