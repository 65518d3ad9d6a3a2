/** Import an app from a `.json` export file (POST /v1/apps/import) and open it. */
import { type ChangeEvent, useState } from "react";
import { useLocation } from "wouter";
import { api, errorMessage } from "../api/client";
import type { ExportDocument } from "../api/types";
import { T } from "../testids";

export function ImportButton() {
  const [, navigate] = useLocation();
  const [error, setError] = useState("");

  async function pick(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    event.target.value = "";
    if (!file) return;
    setError("");
    let doc: ExportDocument;
    try {
      doc = JSON.parse(await file.text()) as ExportDocument;
    } catch {
      setError(`${file.name} is not a JSON file.`);
      return;
    }
    const { data, error: failure } = await api.POST("/v1/apps/import", { body: doc });
    if (data) navigate(`/apps/${data.id}`);
    else setError(errorMessage(failure, `${file.name} could not be imported.`));
  }

  return (
    <div className="import-app">
      <input id="import-file" className="visually-hidden" type="file" accept=".json,application/json"
        onChange={pick} data-testid={T.importApp} />
      <label className="button" htmlFor="import-file">Import app…</label>
      {error && <p role="alert" className="error">{error}</p>}
    </div>
  );
}
