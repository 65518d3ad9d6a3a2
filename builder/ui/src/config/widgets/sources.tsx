/**
 * Fields picked from the organization's own things, chosen by the block's `"x-mantle-source"` hint:
 * a knowledge base, an app to call, and that app's version. The list is read when the field shows
 * (and again on demand: a base made in another tab), and a failure says the API's reason.
 */
import { useEffect, useState } from "react";
import { Link, useRoute } from "wouter";
import { api, errorMessage } from "../../api/client";
import { type ApiSource, sourceOf } from "../schema";
import { appChoices, type Choices, knowledgeChoices, versionChoices, versionValue } from "../sources";
import type { WidgetProps } from "./types";

/** Reads the list once; what it resolves to makes the choices for any current value (or says why not). */
type Loader = (app: string, self: string | null) => Promise<((value: unknown) => Choices) | string>;

const loadKnowledge: Loader = async () => {
  const { data, error } = await api.GET("/v1/knowledge");
  if (!data) return errorMessage(error, "The knowledge bases could not be listed.");
  return (value) => knowledgeChoices(data.items, value);
};

const loadApps: Loader = async (_app, self) => {
  const { data, error } = await api.GET("/v1/apps", { params: { query: { limit: 100 } } });
  if (!data) return errorMessage(error, "The apps could not be listed.");
  return (value) => appChoices(data.items, value, self);
};

const loadVersions: Loader = async (app) => {
  if (!app) return (value) => versionChoices([], value);
  const { data, error } = await api.GET("/v1/apps/{app_id}/versions", { params: { path: { app_id: app }, query: { limit: 100 } } });
  if (!data) return errorMessage(error, "The app's versions could not be listed.");
  return (value) => versionChoices(data.items, value);
};

/** The app whose versions a version field lists: the sibling field its hint names. */
function appOf({ spec, parent }: WidgetProps): string {
  const app = parent?.[spec.schema["x-mantle-app-field"] ?? "app_id"];
  return typeof app === "string" ? app : "";
}

const LOADERS: Record<ApiSource, Loader> = { knowledge: loadKnowledge, apps: loadApps, "app-versions": loadVersions };
const WHAT: Record<ApiSource, string> = { knowledge: "knowledge bases", apps: "apps", "app-versions": "versions" };

export function SourceWidget(props: WidgetProps) {
  const { spec, value, onChange, inputId, describedBy, invalid } = props;
  const source = sourceOf(spec.schema) as ApiSource;
  const [, params] = useRoute("/apps/:id/:tab?");
  const self = params?.id ?? null;
  const [toChoices, setToChoices] = useState<((value: unknown) => Choices) | null>(null);
  const [error, setError] = useState("");
  const [reloads, setReloads] = useState(0);
  const app = source === "app-versions" ? appOf(props) : "";

  useEffect(() => {
    let live = true;
    LOADERS[source](app, self).then((got) => {
      if (!live) return;
      if (typeof got === "string") setError(got);
      else {
        setError("");
        setToChoices(() => got);
      }
    }).catch((e: unknown) => live && setError(errorMessage(e)));
    return () => { live = false; };
  }, [source, app, self, reloads]);

  const found = toChoices ? toChoices(value) : null;
  const empty = found !== null && found.choices.length === 0;
  return (
    <>
      <div className="source-row">
        <select id={inputId} value={found?.selected ?? ""} aria-describedby={describedBy} aria-invalid={invalid || undefined}
          aria-busy={found === null && !error} disabled={found === null && !error}
          onChange={(e) => {
            const choice = e.target.value;
            if (choice === "") onChange(undefined);
            else onChange(source === "app-versions" ? versionValue(choice) : choice);
          }}>
          {found === null && !error && <option value="">Loading {WHAT[source]}…</option>}
          {found !== null && found.selected === "" && <option value="">{empty ? `No ${WHAT[source]} yet` : "Choose…"}</option>}
          {found?.choices.map((c) => <option key={c.value} value={c.value} disabled={c.disabled}>{c.label}</option>)}
        </select>
        <button type="button" className="icon" onClick={() => setReloads((n) => n + 1)}
          aria-label={`Reload the ${WHAT[source]}`} title={`Reload the ${WHAT[source]}`}>↻</button>
      </div>
      {error && <p role="alert" className="field-error">{error}</p>}
      {source === "knowledge" && empty && (
        <p className="field-desc">Create one on the <Link href="/knowledge">Knowledge</Link> screen, then reload.</p>
      )}
    </>
  );
}
