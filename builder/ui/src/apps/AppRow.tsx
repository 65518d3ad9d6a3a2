/** One app in the list: open, rename, export, delete (after a confirmation). */
import { type FormEvent, useState } from "react";
import { Link } from "wouter";
import { api, errorMessage } from "../api/client";
import type { AppSummary } from "../api/types";
import { Dialog } from "../common/Dialog";
import { downloadJson, fileNameOf } from "../common/download";
import { T } from "../testids";

interface Props {
  app: AppSummary;
  onChanged: () => void;
}

export function AppRow({ app, onChanged }: Props) {
  const [renaming, setRenaming] = useState(false);
  const [name, setName] = useState(app.name);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState("");
  const path = { params: { path: { app_id: app.id } } };

  async function rename(event: FormEvent) {
    event.preventDefault();
    const { error: failure } = await api.PATCH("/v1/apps/{app_id}", { ...path, body: { name: name.trim() } });
    if (failure) return setError(errorMessage(failure, "Renaming failed."));
    setRenaming(false);
    onChanged();
  }

  async function exportApp() {
    const { data, error: failure } = await api.GET("/v1/apps/{app_id}/export", path);
    if (data) downloadJson(data, fileNameOf(app.name, ".mantle.json"));
    else setError(errorMessage(failure, "Export failed."));
  }

  async function remove() {
    const { error: failure } = await api.DELETE("/v1/apps/{app_id}", path);
    setConfirming(false);
    if (failure) return setError(errorMessage(failure, "Deleting failed."));
    onChanged();
  }

  return (
    <li className="app-row" data-testid={T.appRow} data-app-id={app.id}>
      {renaming ? (
        <form onSubmit={rename} className="rename">
          <label htmlFor={`rename-${app.id}`}>New name for {app.name}</label>
          <input id={`rename-${app.id}`} required maxLength={200} value={name} autoFocus
            onChange={(e) => setName(e.target.value)} />
          <button type="submit" disabled={!name.trim()}>Save name</button>
          <button type="button" onClick={() => { setRenaming(false); setName(app.name); }}>Cancel</button>
        </form>
      ) : (
        <div className="app-main">
          <Link href={`/apps/${app.id}`} className="app-name">{app.name}</Link>
          {app.description && <p className="app-description">{app.description}</p>}
          <p className="app-meta">
            {app.latest_version > 0 ? `Published version ${app.latest_version}` : "Not published"}
            {" · "}edited {new Date(app.updated_at).toLocaleString()}
          </p>
        </div>
      )}
      <div className="app-actions" role="group" aria-label={`Actions for ${app.name}`}>
        <button type="button" onClick={() => setRenaming(true)} disabled={renaming}>Rename</button>
        <button type="button" onClick={exportApp}>Export</button>
        <button type="button" className="danger" onClick={() => setConfirming(true)}>Delete</button>
      </div>
      {error && <p role="alert" className="error">{error}</p>}
      <Dialog title={`Delete ${app.name}?`} open={confirming} onClose={() => setConfirming(false)} testId="confirm-delete">
        <p>The app, its draft and all its published versions are deleted. This cannot be undone.</p>
        <div className="dialog-buttons">
          <button type="button" className="danger" onClick={remove}>Delete app</button>
          <button type="button" onClick={() => setConfirming(false)} autoFocus>Cancel</button>
        </div>
      </Dialog>
    </li>
  );
}
