/** One share link: its URL and embed snippet to copy, its settings, and revoke. */
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import { ConfirmButton } from "../common/ConfirmButton";
import { CopyButton } from "../common/CopyButton";
import { localTime } from "../versions/format";
import { T } from "../testids";
import type { Share } from "./types";

const limit = (n: number | null, what: string) => (n === null ? `no limit ${what}` : `${n} ${what}`);

export function ShareItem({ share, onChanged }: { share: Share; onChanged: () => void }) {
  const name = share.label || share.url;
  const active = share.state === "active";

  async function revoke(): Promise<string> {
    const { error } = await api.POST("/v1/apps/{app_id}/shares/{share_id}/revoke", {
      params: { path: { app_id: share.app_id, share_id: share.id } },
    });
    if (error) return errorMessage(error, "Revoking failed.");
    onChanged();
    return "";
  }

  return (
    <li className={`share-item state-${share.state}`} data-testid={T.shareItem} data-share-id={share.id} data-state={share.state}>
      <div className="share-head">
        <strong>{share.label || "Share link"}</strong>
        <span className="state-tag">{share.state === "active" ? "Active" : share.state === "revoked" ? "Revoked" : "Expired"}</span>
        <span>{share.has_access_code ? "Access code required" : "No access code"}</span>
        <span>{share.version === null ? "Latest published version" : `Version ${share.version}`}</span>
      </div>
      <div className="copy-row">
        <label htmlFor={`share-url-${share.id}`}>URL</label>
        <input id={`share-url-${share.id}`} readOnly value={share.url} className="mono" data-share-url />
        <CopyButton text={share.url} what={`the URL of ${name}`} />
      </div>
      <p className="muted">
        {limit(share.visitor_per_minute, "per visitor a minute")}, {limit(share.link_per_minute, "a minute in all")},{" "}
        {limit(share.daily_quota, "a day")}{share.expires_at ? `; expires ${localTime(share.expires_at)}` : ""}
        {share.revoked_at ? `; revoked ${localTime(share.revoked_at)}` : ""}
      </p>
      {active && (
        <details>
          <summary>Embed on a web page</summary>
          <label htmlFor={`share-embed-${share.id}`}>HTML to paste into the page</label>
          <textarea id={`share-embed-${share.id}`} readOnly rows={3} value={share.embed_html} />
          <CopyButton text={share.embed_html} what={`the embed snippet of ${name}`} />
          <p className="muted">Allowed on: {share.embed_origins.length ? share.embed_origins.join(", ") : "no site"}.</p>
        </details>
      )}
      {active && (
        <ConfirmButton label="Revoke" ariaLabel={`Revoke ${name}`} title="Revoke this link?" confirmLabel="Revoke link"
          testId={T.revokeShare} dialogTestId={T.revokeDialog} onConfirm={revoke}>
          <p>The link stops working at once, for everyone, for good. A new link has a new address.</p>
        </ConfirmButton>
      )}
    </li>
  );
}
