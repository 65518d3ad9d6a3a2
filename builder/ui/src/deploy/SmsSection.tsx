/** The SMS section: route phone numbers to the app, with the Twilio credentials status and the URL Twilio needs. */
import { type FormEvent, useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { ConfirmButton } from "../common/ConfirmButton";
import { CopyButton } from "../common/CopyButton";
import { describedBy, FormField, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, formErrors, NO_ERRORS } from "../common/fieldErrors";
import { T } from "../testids";
import type { Credential, PhoneRoute } from "./types";

const NUMBER_HINT = "Such as +15551234567: a number of the organization's Twilio account.";

function TwilioStatus({ twilio }: { twilio: Credential | null | undefined }) {
  if (twilio === undefined) return <p role="status">Checking the Twilio credentials…</p>;
  if (twilio === null) {
    return <p className="warning">⚠ No Twilio credentials are stored for the organization: an admin stores them
      (account SID and auth token) with <code>POST /v1/credentials</code> before a number can be routed.</p>;
  }
  return <p className="ok">✓ Twilio credentials stored (account <code>{String(twilio.public.account_sid ?? "")}</code>).</p>;
}

function RouteItem({ route, onRemoved }: { route: PhoneRoute; onRemoved: () => void }) {
  async function remove(): Promise<string> {
    const { error } = await api.DELETE("/v1/apps/{app_id}/phone-numbers/{route_id}", {
      params: { path: { app_id: route.app_id ?? "", route_id: route.id } },
    });
    if (error) return errorMessage(error, "Removing failed.");
    onRemoved();
    return "";
  }
  return (
    <li className="number-item" data-testid={T.numberItem} data-number={route.number}>
      <strong className="mono">{route.number}</strong>
      <div className="copy-row">
        <label htmlFor={`webhook-${route.id}`}>Twilio: “A message comes in” webhook (HTTP POST)</label>
        <input id={`webhook-${route.id}`} readOnly value={route.webhook_url} className="mono" data-webhook-url />
        <CopyButton text={route.webhook_url} what={`the webhook URL of ${route.number}`} />
      </div>
      <p className="muted">Delivery status callbacks go to <code>{route.status_callback_url}</code> (set on each message).</p>
      <ConfirmButton label="Remove" ariaLabel={`Remove the route of ${route.number}`} title={`Stop routing ${route.number}?`}
        confirmLabel="Remove route" onConfirm={remove}>
        <p>Messages to {route.number} stop starting this app. Its conversations stay.</p>
      </ConfirmButton>
    </li>
  );
}

export function SmsSection({ appId }: { appId: string }) {
  const [routes, setRoutes] = useState<PhoneRoute[] | null>(null);
  const [twilio, setTwilio] = useState<Credential | null | undefined>(undefined);
  const [number, setNumber] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const formRef = useFocusOnErrors(errors);
  const [loadError, setLoadError] = useState("");

  const load = useCallback(async () => {
    const path = { params: { path: { app_id: appId } } };
    const [numbers, credentials] = await Promise.all([api.GET("/v1/apps/{app_id}/phone-numbers", path), api.GET("/v1/credentials")]);
    if (numbers.data) setRoutes(numbers.data.items);
    else setLoadError(errorMessage(numbers.error, "The phone numbers could not be loaded."));
    setTwilio(credentials.data ? credentials.data.items.find((c) => c.type === "twilio") ?? null : null);
  }, [appId]);

  useEffect(() => {
    void load();
  }, [load]);

  async function route(event: FormEvent) {
    event.preventDefault();
    const { data, error } = await api.POST("/v1/apps/{app_id}/phone-numbers", {
      params: { path: { app_id: appId } }, body: { number: number.trim() },
    });
    if (!data) return setErrors(formErrors(error, ["number"], "The number could not be routed."));
    setErrors(NO_ERRORS);
    setNumber("");
    void load();
  }

  return (
    <section className="deploy-section" aria-labelledby="sms-title" data-testid={T.smsSection}>
      <h2 id="sms-title">SMS</h2>
      <p className="muted">Messages to a routed number start the published app (it must start with twilio.sms_input).
        Paste the number's webhook URL into Twilio's console, under the number's messaging configuration.</p>
      <TwilioStatus twilio={twilio} />
      <form ref={formRef} className="deploy-form inline-form" onSubmit={route} noValidate>
        <FormField id="sms-number" label="Phone number (E.164)" hint={NUMBER_HINT} error={errors.fields.number}>
          <input {...describedBy("sms-number", errors.fields.number, NUMBER_HINT)} value={number} inputMode="tel" autoComplete="off"
            onChange={(e) => setNumber(e.target.value)} />
        </FormField>
        {errors.form && <p role="alert" className="error">{errors.form}</p>}
        <button type="submit" className="primary" disabled={!number.trim()}>Route number</button>
      </form>
      {loadError && <p role="alert" className="error">{loadError}</p>}
      {routes && routes.length === 0 && <p>No number is routed to this app.</p>}
      {routes && routes.length > 0 && <ul className="number-list">{routes.map((r) => <RouteItem key={r.id} route={r} onRemoved={() => void load()} />)}</ul>}
    </section>
  );
}
