/** The Webhook trigger section: make the app's URL, rotate it (shown once each time), remove it, and how to sign. */
import { useCallback, useEffect, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { ConfirmButton } from "../common/ConfirmButton";
import { CopyButton } from "../common/CopyButton";
import { localTime } from "../versions/format";
import { T } from "../testids";
import { SigningHelp } from "./SigningHelp";
import type { Webhook } from "./types";
import { usePublishedGraph } from "./usePublishedGraph";

export function WebhookSection({ appId }: { appId: string }) {
  const [hook, setHook] = useState<Webhook | null | undefined>(undefined);
  const [error, setError] = useState("");
  const published = usePublishedGraph(appId);
  const path = { params: { path: { app_id: appId } } };

  const load = useCallback(async () => {
    const { data, response, error: failure } = await api.GET("/v1/apps/{app_id}/webhook", { params: { path: { app_id: appId } } });
    if (data) setHook((shown) => (shown?.url && shown.id === data.id ? { ...data, url: shown.url } : data));
    else if (response.status === 404) setHook(null);
    else setError(errorMessage(failure, "The webhook could not be loaded."));
  }, [appId]);

  useEffect(() => {
    void load();
  }, [load]);

  async function create() {
    const { data, error: failure } = await api.POST("/v1/apps/{app_id}/webhook", path);
    if (data) setHook(data);
    else setError(errorMessage(failure, "The webhook could not be made."));
  }

  async function rotate(): Promise<string> {
    const { data, error: failure } = await api.POST("/v1/apps/{app_id}/webhook/rotate", path);
    if (!data) return errorMessage(failure, "Rotating failed.");
    setHook(data);
    return "";
  }

  async function remove(): Promise<string> {
    const { error: failure } = await api.DELETE("/v1/apps/{app_id}/webhook", path);
    if (failure) return errorMessage(failure, "Removing failed.");
    setHook(null);
    return "";
  }

  return (
    <section className="deploy-section" aria-labelledby="webhook-title" data-testid={T.webhookSection}>
      <h2 id="webhook-title">Webhook trigger</h2>
      {error && <p role="alert" className="error">{error}</p>}
      {hook === null && (
        <>
          <p>The app has no webhook URL.</p>
          <button type="button" className="primary" onClick={() => void create()}>Create webhook URL</button>
        </>
      )}
      {hook && (
        <>
          {hook.url ? (
            <div className="copy-row">
              <label htmlFor="webhook-url">Webhook URL (shown once: copy it now and keep it secret)</label>
              <input id="webhook-url" readOnly value={hook.url} className="mono" data-webhook-url />
              <CopyButton text={hook.url} what="the webhook URL" />
            </div>
          ) : (
            <p>The URL starting <code>/hooks/{hook.prefix}…</code> was shown when it was made. Lost it? Rotate to get a new one.</p>
          )}
          <p className="muted">Made {localTime(hook.created_at)}{hook.rotated_at ? `, rotated ${localTime(hook.rotated_at)}` : ""}.</p>
          <div className="button-row">
            <ConfirmButton label="Rotate" ariaLabel="Rotate the webhook URL" title="Give the webhook a new URL?" confirmLabel="Rotate URL"
              onConfirm={rotate}><p>The current URL stops working at once; callers must be given the new one.</p></ConfirmButton>
            <ConfirmButton label="Remove" ariaLabel="Remove the webhook URL" title="Remove the webhook URL?" confirmLabel="Remove webhook"
              onConfirm={remove}><p>Posts to the URL get 404 from now on.</p></ConfirmButton>
          </div>
          <SigningHelp published={published} url={hook.url ?? ""} />
        </>
      )}
    </section>
  );
}
