/** One app: its name and the tabs (Editor, Runs, Versions, Deploy), each at its own URL. */
import { useEffect, useState } from "react";
import { Link } from "wouter";
import { api, errorMessage } from "../api/client";
import type { AppRead } from "../api/types";
import { T } from "../testids";
import { appTabs } from "./tabs";

interface Props {
  appId: string;
  tab: string;
}

export function AppView({ appId, tab }: Props) {
  const [app, setApp] = useState<AppRead | null>(null);
  const [error, setError] = useState("");

  useEffect(() => {
    setApp(null);
    api.GET("/v1/apps/{app_id}", { params: { path: { app_id: appId } } }).then(({ data, error: failure }) => {
      if (data) setApp(data);
      else setError(errorMessage(failure, "This app could not be opened."));
    }).catch((e: unknown) => setError(errorMessage(e)));
  }, [appId]);

  const current = appTabs.find((t) => t.id === tab);
  if (error) return <main className="notice"><h1>App not found</h1><p role="alert">{error}</p><Link href="/">Back to the apps</Link></main>;
  if (!app) return <main className="notice"><p role="status">Opening the app…</p></main>;

  return (
    <main className="app-view">
      <div className="app-title">
        <h1>{app.name}</h1>
        <nav aria-label="App sections" data-testid={T.appTabs}>
          <ul>
            {appTabs.map((t) => (
              <li key={t.id}>
                <Link href={`/apps/${appId}${t.id === "editor" ? "" : `/${t.id}`}`}
                  aria-current={t.id === tab ? "page" : undefined}>{t.label}</Link>
              </li>
            ))}
          </ul>
        </nav>
      </div>
      {current ? <current.Component appId={appId} /> : <p role="alert">This app has no section “{tab}”.</p>}
    </main>
  );
}
