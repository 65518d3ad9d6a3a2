/** Create a share link: an optional access code, run limits, an expiry, a pinned version, where it may be embedded. */
import { type FormEvent, useState } from "react";
import { api } from "../api/client";
import { describedBy, FormField, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, formErrors, NO_ERRORS } from "../common/fieldErrors";
import { T } from "../testids";
import type { Share, ShareCreate } from "./types";

const FIELDS = ["label", "access_code", "version", "visitor_per_minute", "link_per_minute", "daily_quota",
  "expires_at", "embed_origins"] as const;
type Field = (typeof FIELDS)[number];
type Values = Record<Field, string>;

// The API's own defaults (models/shares.py), shown so that a person sees the limits they get.
const START: Values = {
  label: "", access_code: "", version: "", visitor_per_minute: "10", link_per_minute: "60", daily_quota: "1000",
  expires_at: "", embed_origins: "*",
};

/** An empty number field is "no limit" (null), as the API reads it. */
const numberOrNull = (v: string) => (v.trim() === "" ? null : Number(v));

function body(v: Values): ShareCreate {
  return {
    label: v.label.trim(),
    access_code: v.access_code === "" ? null : v.access_code,
    version: numberOrNull(v.version),
    visitor_per_minute: numberOrNull(v.visitor_per_minute),
    link_per_minute: numberOrNull(v.link_per_minute),
    daily_quota: numberOrNull(v.daily_quota),
    // A datetime-local value is the person's local time; the API wants an aware time.
    expires_at: v.expires_at ? new Date(v.expires_at).toISOString() : null,
    embed_origins: v.embed_origins.split(/[\s,]+/).filter(Boolean),
  };
}

interface Props {
  appId: string;
  onCreated: (share: Share) => void;
}

export function ShareForm({ appId, onCreated }: Props) {
  const [values, setValues] = useState<Values>(START);
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const formRef = useFocusOnErrors(errors);
  const [busy, setBusy] = useState(false);

  function input(field: Field, label: string, props: Record<string, unknown> = {}, hint?: string) {
    const id = `share-${field.replace(/_/g, "-")}`;
    return (
      <FormField id={id} label={label} hint={hint} error={errors.fields[field]}>
        <input {...describedBy(id, errors.fields[field], hint)} value={values[field]} {...props}
          onChange={(e) => setValues({ ...values, [field]: e.target.value })} />
      </FormField>
    );
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    const { data, error } = await api.POST("/v1/apps/{app_id}/shares", { params: { path: { app_id: appId } }, body: body(values) });
    setBusy(false);
    if (!data) return setErrors(formErrors(error, FIELDS, "The link could not be created."));
    setErrors(NO_ERRORS);
    setValues(START);
    onCreated(data);
  }

  return (
    <form ref={formRef} className="share-form deploy-form" onSubmit={submit} data-testid={T.shareForm} aria-labelledby="share-form-title" noValidate>
      <h3 id="share-form-title">New share link</h3>
      {input("label", "Label (only you see it)", { maxLength: 200 })}
      {input("access_code", "Access code (optional)", { autoComplete: "off", spellCheck: false },
        "Visitors must enter it before they can run the app. At least 4 characters; stored hashed.")}
      {input("version", "Version (empty: always the latest published)", { type: "number", min: 1, inputMode: "numeric" })}
      <fieldset className="limits">
        <legend>Run limits (empty: no limit)</legend>
        {input("visitor_per_minute", "Runs per visitor per minute", { type: "number", min: 1 })}
        {input("link_per_minute", "Runs per minute, all visitors", { type: "number", min: 1 })}
        {input("daily_quota", "Runs per day (UTC)", { type: "number", min: 1 })}
      </fieldset>
      {input("expires_at", "Expires (optional)", { type: "datetime-local" }, "After this the link stops working.")}
      {input("embed_origins", "Sites that may embed it", { spellCheck: false },
        "Origins such as https://example.com, separated by spaces; * for any; empty for none.")}
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      <button type="submit" className="primary" disabled={busy}>Create link</button>
    </form>
  );
}
