/**
 * The page of a one-time link: an invitation (`/builder/invite?token=`) or a set-password link
 * (`/builder/reset-password?token=`, printed by `mantle users`). It shows what the link is for,
 * takes a password (a new one, or an existing account's own), and signs the browser in.
 */
import { type FormEvent, useEffect, useState } from "react";
import { api } from "../api/client";
import type { Session } from "../api/types";
import { FormField, describedBy } from "../common/FormField";
import { type FormErrors, NO_ERRORS, formErrors } from "../common/fieldErrors";
import { T } from "../testids";
import { useSession } from "./session";
import "./auth.css";

interface Offer {
  email: string;
  org_name?: string;
  role?: string;
  has_account: boolean;
}

export type LinkKind = "invite" | "reset";

async function lookUp(kind: LinkKind, token: string): Promise<Offer | string> {
  const query = { params: { query: { token } } };
  if (kind === "invite") {
    const { data, error } = await api.GET("/v1/invitations/accept", query);
    return data ?? formErrors(error, [], "This link cannot be used.").form;
  }
  const { data, error } = await api.GET("/v1/password-reset", query);
  return data ? { email: data.email, has_account: false } : formErrors(error, [], "This link cannot be used.").form;
}

async function redeem(kind: LinkKind, token: string, password: string): Promise<Session | FormErrors> {
  const body = { body: { token, password } };
  const { data, error } = kind === "invite"
    ? await api.POST("/v1/invitations/accept", body) : await api.POST("/v1/password-reset", body);
  return data ?? formErrors(error, ["password"], "The link could not be used.");
}

export function AcceptLink({ kind }: { kind: LinkKind }) {
  const token = new URLSearchParams(window.location.search).get("token") ?? "";
  const [offer, setOffer] = useState<Offer | string | null>(null);
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!token) setOffer("This link has no token: copy the whole link you were given.");
    else void lookUp(kind, token).then(setOffer).catch(() => setOffer("The server could not be reached."));
  }, [kind, token]);

  const choosing = typeof offer === "object" && offer !== null && !offer.has_account;
  const mismatch = choosing && again !== "" && again !== password;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (mismatch) return;
    setBusy(true);
    const answer = await redeem(kind, token, password).catch(() => ({ fields: {}, form: "The server could not be reached." }));
    setBusy(false);
    if ("csrf_token" in answer) {
      window.history.replaceState(null, "", "/builder/");  // the token is spent: keep it out of history
      useSession.getState().signedIn(answer);
    } else setErrors(answer);
  }

  if (offer === null) return <main className="notice"><p role="status">Loading…</p></main>;
  if (typeof offer === "string") {
    return (
      <main className="sign-in">
        <h1>Mantle builder</h1>
        <p role="alert" className="error">{offer}</p>
        <p><a href="/builder/">Go to the sign-in page</a></p>
      </main>
    );
  }
  const title = kind === "reset" ? "Choose a new password"
    : `Join ${offer.org_name} as ${offer.role}`;
  return (
    <main className="sign-in">
      <h1>Mantle builder</h1>
      <form onSubmit={submit} data-testid={T.acceptLinkForm} aria-labelledby="accept-title">
        <h2 id="accept-title">{title}</h2>
        <p>For <strong>{offer.email}</strong>.{" "}
          {offer.has_account ? "This email already has an account: give its password to join."
            : "Choose a password of at least 10 characters that is not a common one."}</p>
        <FormField id="accept-password" label={offer.has_account ? "Your password" : "Password"}
          error={errors.fields.password}>
          <input {...describedBy("accept-password", errors.fields.password)} type="password" required
            autoComplete={offer.has_account ? "current-password" : "new-password"} value={password}
            onChange={(e) => setPassword(e.target.value)} />
        </FormField>
        {choosing && (
          <FormField id="accept-again" label="The same password again" error={mismatch ? "The two passwords differ." : undefined}>
            <input {...describedBy("accept-again", mismatch ? "differ" : undefined)} type="password" required
              autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
          </FormField>
        )}
        {errors.form && <p role="alert" className="error">{errors.form}</p>}
        <button type="submit" className="primary" disabled={busy || !password || mismatch}>
          {kind === "reset" ? "Set the password and sign in" : "Join and sign in"}
        </button>
      </form>
    </main>
  );
}
