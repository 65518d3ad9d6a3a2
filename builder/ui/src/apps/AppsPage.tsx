/** The apps of the organization: search, create, import, and each app's actions. */
import { useCallback, useEffect, useState } from "react";
import { api, errorMessage } from "../api/client";
import type { AppSummary } from "../api/types";
import { T } from "../testids";
import { AppRow } from "./AppRow";
import { CreateAppForm } from "./CreateAppForm";
import { ImportButton } from "./ImportButton";

const SEARCH_DELAY_MS = 250;

export function AppsPage() {
  const [q, setQ] = useState("");
  const [apps, setApps] = useState<AppSummary[] | null>(null);
  const [total, setTotal] = useState(0);
  const [error, setError] = useState("");

  const load = useCallback(async (query: string) => {
    const { data, error: failure } = await api.GET("/v1/apps", {
      params: { query: { q: query.trim() || undefined, limit: 100 } },
    });
    if (data) {
      setApps(data.items);
      setTotal(data.total);
      setError("");
    } else {
      setError(errorMessage(failure, "The apps could not be listed."));
    }
  }, []);

  useEffect(() => {
    const timer = setTimeout(() => void load(q), q ? SEARCH_DELAY_MS : 0);
    return () => clearTimeout(timer);
  }, [q, load]);

  return (
    <main className="apps-page">
      <h1>Apps</h1>
      <div className="apps-actions">
        <CreateAppForm />
        <ImportButton />
      </div>
      <section aria-labelledby="apps-list-title">
        <h2 id="apps-list-title">Your apps</h2>
        <label htmlFor="apps-search">Search apps</label>
        <input id="apps-search" type="search" value={q} onChange={(e) => setQ(e.target.value)}
          data-testid={T.appsSearch} placeholder="Name or description" />
        {error && <p role="alert" className="error">{error}</p>}
        {apps === null ? <p role="status">Loading apps…</p> : (
          <>
            <p role="status" className="count">
              {total === 0 ? (q ? "No app matches this search." : "No apps yet: create one above.")
                : `${total} app${total === 1 ? "" : "s"}${total > apps.length ? `, first ${apps.length} shown` : ""}`}
            </p>
            <ul className="apps-list" data-testid={T.appsList}>
              {apps.map((app) => <AppRow key={app.id} app={app} onChanged={() => void load(q)} />)}
            </ul>
          </>
        )}
      </section>
    </main>
  );
}
