/** People (admins only): the members and their roles, invitations waiting, and inviting someone. */
import { api } from "../api/client";
import { useSession } from "../auth/session";
import { ConfirmButton } from "../common/ConfirmButton";
import { errorMessage } from "../api/errors";
import { T } from "../testids";
import { InviteForm } from "./InviteForm";
import { MemberRow } from "./MemberRow";
import { ROLE_HINTS, ROLES, usePeople } from "./usePeople";
import "./people.css";

export function PeoplePage() {
  const role = useSession((s) => s.session?.role);
  const { members, invitations, error, reload } = usePeople();
  if (role !== "admin") {
    return <main className="notice"><h1>People</h1><p>Only admins manage the people of an organization.</p></main>;
  }

  async function withdraw(id: string): Promise<string> {
    const { error: failure } = await api.DELETE("/v1/invitations/{invitation_id}", { params: { path: { invitation_id: id } } });
    if (failure) return errorMessage(failure, "The invitation could not be withdrawn.");
    await reload();
    return "";
  }

  return (
    <main className="people-page" data-testid={T.peoplePage}>
      <h1>People</h1>
      <p className="muted">Roles: {ROLES.map((r) => `${r}: ${ROLE_HINTS[r]}`).join("; ")}.</p>
      {error && <p role="alert" className="error">{error}</p>}
      <div className="people-columns">
        <section aria-labelledby="members-title">
          <h2 id="members-title">Members</h2>
          {members === null ? <p role="status">Loading members…</p> : members.length === 0
            ? <p>No one has an account here yet: invite someone.</p> : (
            <table className="members">
              <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Sessions</th>
                <th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
              <tbody>{members.map((m) => <MemberRow key={m.user_id} member={m} onChanged={reload} />)}</tbody>
            </table>
          )}
          <h2>Invitations waiting</h2>
          {invitations.length === 0 ? <p>None.</p> : (
            <ul className="invitations">
              {invitations.map((i) => (
                <li key={i.id} data-testid={T.invitationRow}>
                  <span>{i.email} as {i.role}, until {new Date(i.expires_at).toLocaleString()}</span>
                  <ConfirmButton label="Withdraw" ariaLabel={`Withdraw the invitation of ${i.email}`}
                    title={`Withdraw the invitation of ${i.email}?`} onConfirm={() => withdraw(i.id)}>
                    <p>Its link stops working at once.</p>
                  </ConfirmButton>
                </li>
              ))}
            </ul>
          )}
        </section>
        <InviteForm onInvited={reload} />
      </div>
    </main>
  );
}
