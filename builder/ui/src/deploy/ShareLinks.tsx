/** The Share links section: create links to the app's web page and manage them. */
import { useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { ShareForm } from "./ShareForm";
import { ShareItem } from "./ShareItem";
import type { Share } from "./types";

export function ShareLinks({ appId }: { appId: string }) {
  const [shares, setShares] = useState<Share[] | null>(null);
  const [error, setError] = useState("");
  const [said, setSaid] = useState("");

  const load = useCallback(async () => {
    const { data, error: failure } = await api.GET("/v1/apps/{app_id}/shares", {
      params: { path: { app_id: appId }, query: { limit: 100 } },
    });
    if (data) setShares(data.items);
    else setError(errorMessage(failure, "The share links could not be loaded."));
  }, [appId]);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section className="deploy-section" aria-labelledby="shares-title">
      <h2 id="shares-title">Share links</h2>
      <p className="muted">A link opens the app as a web page that anyone with it can run (apps that start with
        webapp.input or trigger.api). Links are of the published app, never the draft.</p>
      <div className="section-body">
        <ShareForm appId={appId} onCreated={(s) => {
          setSaid(`Created the link ${s.label || s.url}: it is first in the list.`);
          void load();
        }} />
        <div className="share-list">
          <h3>Links</h3>
          <p role="status" className="said">{said}</p>
          {error && <p role="alert" className="error">{error}</p>}
          {shares && shares.length === 0 && <p>No links yet.</p>}
          {shares && shares.length > 0 && (
            <ul>{shares.map((s) => <ShareItem key={s.id} share={s} onChanged={() => void load()} />)}</ul>
          )}
        </div>
      </div>
    </section>
  );
}
