/** The organization's members and pending invitations, loaded together and reloaded after a change. */
import { useCallback, useEffect, useState } from "react";
import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema";

export type Member = components["schemas"]["MemberRead"];
export type Invitation = components["schemas"]["InvitationRead"];
export type Role = Member["role"];
export const ROLES: Role[] = ["admin", "builder", "reviewer"];

/** What each role may do, as the roles table of the README says it. */
export const ROLE_HINTS: Record<Role, string> = {
  admin: "everything, and manages people, keys and settings",
  builder: "builds, publishes and runs apps",
  reviewer: "reads apps and decides reviews",
};

export interface People {
  members: Member[] | null;
  invitations: Invitation[];
  error: string;
  reload: () => Promise<void>;
}

export function usePeople(): People {
  const [members, setMembers] = useState<Member[] | null>(null);
  const [invitations, setInvitations] = useState<Invitation[]>([]);
  const [error, setError] = useState("");

  const reload = useCallback(async () => {
    const [m, i] = await Promise.all([api.GET("/v1/members"), api.GET("/v1/invitations")]);
    if (m.data) setMembers(m.data);
    if (i.data) setInvitations(i.data);
    setError(m.data && i.data ? "" : errorMessage(m.error ?? i.error, "The members could not be listed."));
  }, []);

  useEffect(() => { void reload(); }, [reload]);
  return { members, invitations, error, reload };
}
