/**
 * Invite someone by email with a role. There is no mail server: the one-time link is shown here,
 * to copy and hand over; it works once, for 7 days.
 */
import { type FormEvent, useState } from "react";
import { api } from "../api/client";
import { CopyButton } from "../common/CopyButton";
import { FormField, describedBy, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, NO_ERRORS, formErrors } from "../common/fieldErrors";
import { T } from "../testids";
import { ROLES, ROLE_HINTS, type Role } from "./usePeople";

export function InviteForm({ onInvited }: { onInvited: () => Promise<void> }) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("builder");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [link, setLink] = useState<{ email: string; url: string } | null>(null);
  const formRef = useFocusOnErrors(errors);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setErrors(NO_ERRORS);
    const { data, error } = await api.POST("/v1/invitations", { body: { email: email.trim(), role } });
    if (!data) return setErrors(formErrors(error, ["email", "role"], "The invitation could not be made."));
    setLink({ email: data.email, url: data.url });
    setEmail("");
    await onInvited();
  }

  return (
    <form ref={formRef} onSubmit={submit} className="invite-form" data-testid={T.inviteForm}
      aria-labelledby="invite-title">
      <h2 id="invite-title">Invite someone</h2>
      <FormField id="invite-email" label="Email" error={errors.fields.email}>
        <input {...describedBy("invite-email", errors.fields.email)} type="email" required maxLength={254}
          value={email} onChange={(e) => setEmail(e.target.value)} />
      </FormField>
      <FormField id="invite-role" label="Role" hint={ROLE_HINTS[role]} error={errors.fields.role}>
        <select {...describedBy("invite-role", errors.fields.role, ROLE_HINTS[role])} value={role}
          onChange={(e) => setRole(e.target.value as Role)}>
          {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
      </FormField>
      {errors.form && <p role="alert" className="error">{errors.form}</p>}
      <button type="submit" className="primary" disabled={!email.trim()}>Invite</button>
      {link && (
        <div className="invite-link" role="status">
          <p>Give this one-time link to {link.email} (it works once, for 7 days):</p>
          <input readOnly value={link.url} aria-label={`Invitation link for ${link.email}`} data-testid={T.inviteLink}
            onFocus={(e) => e.target.select()} />
          <CopyButton text={link.url} what={`the invitation link for ${link.email}`} />
        </div>
      )}
    </form>
  );
}
