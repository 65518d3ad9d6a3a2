/** Switch the session to another of the person's organizations (shown when they have several). */
import { useState } from "react";
import { useLocation } from "wouter";
import { api, errorMessage } from "../api/client";
import { T } from "../testids";
import { useSession } from "./session";
import "./auth.css";

export function OrgSwitcher() {
  const session = useSession((s) => s.session);
  const [, navigate] = useLocation();
  const [error, setError] = useState("");
  if (!session || (session.orgs ?? []).length < 2) return null;

  async function switchTo(orgId: string) {
    setError("");
    const { data, error: failure } = await api.POST("/v1/session/org", { body: { org_id: orgId } });
    if (!data) return setError(errorMessage(failure, "Switching organization failed."));
    useSession.getState().signedIn(data);
    navigate("/");  // the apps of the other organization
  }

  return (
    <span className="org-switcher">
      <label htmlFor="org-switcher">Organization</label>
      <select id="org-switcher" data-testid={T.orgSwitcher} value={session.org_id}
        onChange={(e) => void switchTo(e.target.value)}>
        {(session.orgs ?? []).map((o) => <option key={o.id} value={o.id}>{o.name} ({o.role})</option>)}
      </select>
      {error && <span role="alert" className="error">{error}</span>}
    </span>
  );
}
