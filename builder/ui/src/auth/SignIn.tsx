/** The sign-in screen: an API key is exchanged once for an HttpOnly session cookie. */
import { type FormEvent, useState } from "react";
import { api, errorMessage } from "../api/client";
import { T } from "../testids";
import { useSession } from "./session";

export function SignIn() {
  const signedIn = useSession((s) => s.signedIn);
  const [key, setKey] = useState("");
  // The server sends a spent or unknown one-click link back here with ?signin=expired.
  const [error, setError] = useState(() => new URLSearchParams(window.location.search).get("signin") === "expired"
    ? "This sign-in link was already used or has expired: sign in with an API key, or ask for a new link." : "");
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError("");
    try {
      const { data, error: failure } = await api.POST("/v1/session", { body: { api_key: key.trim() } });
      if (data) signedIn(data);
      else setError(errorMessage(failure, "Signing in failed."));
    } catch (e) {
      setError(errorMessage(e, "The server could not be reached."));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="sign-in">
      <h1>Mantle builder</h1>
      <form onSubmit={submit} data-testid={T.signInForm} aria-labelledby="sign-in-title">
        <h2 id="sign-in-title">Sign in</h2>
        <p>Use an API key of your organization (it starts with <code>mk_</code>). It is checked once;
          the browser keeps only a session cookie.</p>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" required value={key}
          onChange={(e) => setKey(e.target.value)} aria-describedby={error ? "sign-in-error" : undefined} />
        {error && <p id="sign-in-error" role="alert" className="error">{error}</p>}
        <button type="submit" disabled={busy || !key.trim()}>Sign in</button>
      </form>
    </main>
  );
}
