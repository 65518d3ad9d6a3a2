/** One member: their email, a role picker, their live sessions, and removing them. */
import { useState } from "react";
import { api, errorMessage } from "../api/client";
import { useSession } from "../auth/session";
import { ConfirmButton } from "../common/ConfirmButton";
import { T } from "../testids";
import { type Member, ROLES, type Role } from "./usePeople";

interface Props {
  member: Member;
  onChanged: () => Promise<void>;
}

export function MemberRow({ member, onChanged }: Props) {
  const me = useSession((s) => s.session?.user_id) === member.user_id;
  const [error, setError] = useState("");
  const path = { params: { path: { user_id: member.user_id } } };

  async function changeRole(role: Role) {
    setError("");
    const { error: failure } = await api.PATCH("/v1/members/{user_id}", { ...path, body: { role } });
    if (failure) setError(errorMessage(failure, "The role could not be changed."));
    await onChanged();
  }

  async function act(done: Promise<{ error?: unknown }>, fallback: string): Promise<string> {
    const { error: failure } = await done;
    if (failure) return errorMessage(failure, fallback);
    await onChanged();
    return "";
  }

  const roleId = `role-${member.user_id}`;
  return (
    <tr data-testid={T.memberRow}>
      <td>{member.email}{me && <span className="muted"> (you)</span>}</td>
      <td>
        <label htmlFor={roleId} className="visually-hidden">Role of {member.email}</label>
        <select id={roleId} value={member.role} data-testid={T.memberRole}
          onChange={(e) => void changeRole(e.target.value as Role)}>
          {ROLES.map((r) => <option key={r} value={r}>{r}</option>)}
        </select>
        {error && <p role="alert" className="error">{error}</p>}
      </td>
      <td>{member.sessions === 0 ? "none" : `${member.sessions} signed in`}</td>
      <td className="actions">
        <ConfirmButton label="Sign out everywhere" ariaLabel={`Sign ${member.email} out everywhere`}
          title={`Sign ${member.email} out?`} testId={T.revokeMemberSessions} danger={false}
          onConfirm={() => act(api.DELETE("/v1/members/{user_id}/sessions", path), "The sessions could not be ended.")}>
          <p>Every browser where {member.email} uses this organization is signed out at once.</p>
        </ConfirmButton>
        <ConfirmButton label="Remove" ariaLabel={`Remove ${member.email}`} title={`Remove ${member.email}?`}
          testId={T.removeMember}
          onConfirm={() => act(api.DELETE("/v1/members/{user_id}", path), "The member could not be removed.")}>
          <p>{member.email} leaves the organization: their sessions here and the API keys they made here end now.</p>
        </ConfirmButton>
      </td>
    </tr>
  );
}
