/** The MCP tool section: offer the app as a tool at /mcp (a switch), its name and description, and how to connect. */
import { type FormEvent, useEffect, useState } from "react";
import { api } from "../api/client";
import { errorMessage } from "../api/errors";
import type { AppRead } from "../api/types";
import { useSession } from "../auth/session";
import { CopyButton } from "../common/CopyButton";
import { describedBy, FormField, useFocusOnErrors } from "../common/FormField";
import { type FormErrors, formErrors, NO_ERRORS } from "../common/fieldErrors";
import { T } from "../testids";
import { clientConfig, keyCommand, mcpUrl, toolDetails } from "./mcp";

const FIELDS = ["tool", "tool_name", "tool_description"] as const;
const NAME_HINT = "Letters, digits, _ . and -, at most 64; unique in the organization. Made of the app's name until you choose one.";
const DESCRIPTION_HINT = "What the tool does, for the model that decides to call it. Left empty, the app's description is used.";

export function McpToolSection({ appId }: { appId: string }) {
  const org = useSession((s) => s.session?.org_name ?? "<organization>");
  const [app, setApp] = useState<AppRead | null>(null);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [errors, setErrors] = useState<FormErrors>(NO_ERRORS);
  const [said, setSaid] = useState("");
  const [busy, setBusy] = useState(false);
  const formRef = useFocusOnErrors(errors);
  const url = mcpUrl(window.location.origin);

  function show(read: AppRead) {
    setApp(read);
    setName(read.tool_name ?? "");
    setDescription(read.tool_description ?? "");
  }

  useEffect(() => {
    api.GET("/v1/apps/{app_id}", { params: { path: { app_id: appId } } }).then(({ data, error }) => {
      if (data) show(data);
      else setErrors({ fields: {}, form: errorMessage(error, "The app could not be loaded.") });
    }).catch((e: unknown) => setErrors({ fields: {}, form: errorMessage(e) }));
  }, [appId]);

  async function patch(body: { tool?: boolean; tool_name?: string; tool_description?: string }, done: string) {
    setBusy(true);
    setSaid("");
    const { data, error } = await api.PATCH("/v1/apps/{app_id}", { params: { path: { app_id: appId } }, body })
      .finally(() => setBusy(false));
    if (!data) return setErrors(formErrors(error, FIELDS, "The tool could not be saved."));
    setErrors(NO_ERRORS);
    show(data);
    setSaid(done);
  }

  function save(event: FormEvent) {
    event.preventDefault();
    void patch(toolDetails(name, description), "Saved.");
  }

  const on = app?.tool ?? false;
  return (
    <section className="deploy-section" aria-labelledby="mcp-title" data-testid={T.mcpSection}>
      <h2 id="mcp-title">MCP tool</h2>
      <p>Offer the app to AI assistants and agents as a tool of the Model Context Protocol: the tool's inputs are
        the fields of the app's trigger, and a call runs the latest published version and answers its outputs.</p>
      {app && (
        <form ref={formRef} className="deploy-form" onSubmit={save} noValidate aria-labelledby="mcp-title">
          <div className="check">
            <input id="mcp-tool-on" type="checkbox" role="switch" checked={on} disabled={busy}
              aria-describedby="mcp-tool-state" onChange={(e) => void patch({ tool: e.target.checked },
                e.target.checked ? "The app is offered as a tool." : "The app is no longer offered as a tool.")} />
            <label htmlFor="mcp-tool-on">Offer this app as an MCP tool</label>
          </div>
          <p id="mcp-tool-state" className={on ? "ok" : "muted"}>
            {on ? `✓ Offered as the tool ${app.tool_name ?? ""}.` : "Not offered: MCP clients do not see it."}</p>
          {on && app.latest_version < 1 && (
            <p className="warning">⚠ No version is published yet: the tool is listed once one is.</p>
          )}
          {on && (
            <>
              <FormField id="mcp-tool-name" label="Tool name" hint={NAME_HINT} error={errors.fields.tool_name}>
                <input {...describedBy("mcp-tool-name", errors.fields.tool_name, NAME_HINT)} value={name} maxLength={64}
                  spellCheck={false} autoComplete="off" onChange={(e) => setName(e.target.value)} />
              </FormField>
              <FormField id="mcp-tool-description" label="Tool description" hint={DESCRIPTION_HINT}
                error={errors.fields.tool_description}>
                <textarea {...describedBy("mcp-tool-description", errors.fields.tool_description, DESCRIPTION_HINT)}
                  value={description} maxLength={2000} rows={3} placeholder={app.description || undefined}
                  onChange={(e) => setDescription(e.target.value)} />
              </FormField>
              <button type="submit" className="primary" disabled={busy}>Save tool name and description</button>
            </>
          )}
          {errors.form && <p role="alert" className="error">{errors.form}</p>}
          <p role="status" className="said">{said}</p>
        </form>
      )}
      {!app && errors.form && <p role="alert" className="error">{errors.form}</p>}
      <h3>Connecting a client</h3>
      <div className="copy-row">
        <label htmlFor="mcp-url">MCP server URL (streamable HTTP)</label>
        <input id="mcp-url" readOnly value={url} className="mono" />
        <CopyButton text={url} what="the MCP server URL" />
      </div>
      <p>Clients send an API key of this organization with the role admin or builder, as the header{" "}
        <code>Authorization: Bearer &lt;key&gt;</code>; without one they get 401. Make a key for each client, for example
        with <code>{keyCommand(org)}</code>, and keep it secret: it
        can run every tool of the organization.</p>
      <pre className="snippet" aria-label="Example: an MCP client's server entry">{clientConfig(url)}</pre>
      <CopyButton text={clientConfig(url)} what="the client entry" />
    </section>
  );
}
