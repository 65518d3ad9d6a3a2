/** The top bar: where you are, who you are signed in as (and where), and signing out. */
import { Link } from "wouter";
import { api } from "../api/client";
import { T } from "../testids";
import { OrgSwitcher } from "./OrgSwitcher";
import { useSession } from "./session";

export function Header() {
  const session = useSession((s) => s.session);
  const signedOut = useSession((s) => s.signedOut);
  if (!session) return null;

  async function signOut() {
    await api.DELETE("/v1/session").catch(() => undefined);
    signedOut();
  }

  return (
    <header className="app-header" data-testid={T.header}>
      <Link href="/" className="brand">Mantle builder</Link>
      <nav aria-label="Main">
        <Link href="/">Apps</Link>
        {/* Reviewers may not read knowledge bases (the API says 403). */}
        {session.role !== "reviewer" && <> · <Link href="/knowledge" data-testid={T.knowledgeLink}>Knowledge</Link></>}
        {session.role === "admin" && <> · <Link href="/people" data-testid={T.peopleLink}>People</Link></>}
      </nav>
      <p className="who">
        {session.email && <span className="email">{session.email}</span>}
        {(session.orgs ?? []).length > 1 ? <OrgSwitcher /> : <span className="org">{session.org_name}</span>}
        <span className="role" title="Your role in this organization">{session.role}</span>
      </p>
      <button type="button" onClick={signOut} data-testid={T.signOut}>Sign out</button>
    </header>
  );
}
